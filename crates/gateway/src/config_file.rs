//! `livegate serve --config file.toml` (or `LIVEGATE_CONFIG`): settings from a TOML file, below
//! flags and environment variables.
//!
//! Precedence: **flag > `LIVEGATE_*` variable > file > built-in default.** clap already applies
//! flag > env > default, so each key of the file simply becomes the *default* of its flag before
//! the command line is parsed a second time. Keys are the long flag names, with `-` or `_`
//! (`redis-url` or `redis_url`); values are strings, numbers, booleans, or arrays for list
//! settings (`channels = ["targets", "payment-methods"]`). An unknown key, or a value of another
//! type, is a configuration error like any other (every one listed, exit 64).

use std::ffi::OsString;
use std::path::Path;

use clap::{CommandFactory, FromArgMatches};

use crate::config::{Cli, Command, ConfigError};

/// Why the command line could not be turned into a [`Cli`].
#[derive(Debug)]
pub enum CliError {
    /// clap's own: a bad flag or value, or `--help`/`--version` (printed, exit 0).
    Clap(clap::Error),
    /// The configuration file is unreadable or has bad keys.
    File(ConfigError),
}

/// Parses the process's arguments, with the configuration file's values as defaults.
pub fn parse_cli() -> Result<Cli, CliError> {
    parse_cli_from(std::env::args_os())
}

/// [`parse_cli`] for given arguments (the first is the program name).
pub fn parse_cli_from<I, T>(args: I) -> Result<Cli, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let first = <Cli as clap::Parser>::try_parse_from(&args).map_err(CliError::Clap)?;
    let path = match &first.command {
        Command::Serve(serve) => serve.config.clone(),
        Command::DevToken(_) => None,
    };
    let Some(path) = path else {
        return Ok(first);
    };
    let defaults = file_defaults(&path).map_err(CliError::File)?;
    let command = Cli::command().mut_subcommand("serve", |mut serve| {
        for (id, values) in defaults {
            serve = serve.mut_arg(id, |arg| arg.default_values(values));
        }
        serve
    });
    let matches = command
        .try_get_matches_from(&args)
        .map_err(CliError::Clap)?;
    Cli::from_arg_matches(&matches).map_err(CliError::Clap)
}

/// Reads the file into (argument id, default values) pairs, or every problem found.
fn file_defaults(path: &Path) -> Result<Vec<(String, Vec<String>)>, ConfigError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(vec![format!("LIVEGATE_CONFIG: cannot read {shown}: {e}")]))?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| ConfigError(vec![format!("LIVEGATE_CONFIG: {shown} is not TOML: {e}")]))?;

    let command = Cli::command();
    let Some(serve) = command.find_subcommand("serve") else {
        return Err(ConfigError(vec!["no serve subcommand".to_owned()]));
    };
    let mut errors = Vec::new();
    let mut defaults = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let arg = serve
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()));
        let Some(arg) = arg.filter(|_| !matches!(long.as_str(), "config" | "help" | "version"))
        else {
            errors.push(format!("LIVEGATE_CONFIG: {shown}: unknown key {key:?}"));
            continue;
        };
        match values(value) {
            Some(values) => defaults.push((arg.get_id().to_string(), values)),
            None => errors.push(format!(
                "LIVEGATE_CONFIG: {shown}: {key} must be a string, number, boolean or array of them"
            )),
        }
    }
    if errors.is_empty() {
        Ok(defaults)
    } else {
        Err(ConfigError(errors))
    }
}

fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(_) | toml::Value::Array(_) | toml::Value::Table(_) => None,
    }
}

fn values(value: &toml::Value) -> Option<Vec<String>> {
    match value {
        toml::Value::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|v| vec![v]),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::ServeArgs;

    fn file(text: &str) -> tempfile_path::TempFile {
        tempfile_path::TempFile::new(text)
    }

    /// A file in the system temp directory, removed on drop (no extra dependency).
    mod tempfile_path {
        use std::path::PathBuf;

        pub struct TempFile(pub PathBuf);

        impl TempFile {
            pub fn new(text: &str) -> Self {
                let path = std::env::temp_dir().join(format!(
                    "livegate-config-test-{}-{}.toml",
                    std::process::id(),
                    uuid::Uuid::new_v4()
                ));
                std::fs::write(&path, text).expect("write a temp file");
                TempFile(path)
            }
        }

        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
    }

    fn serve(args: &[&str]) -> Result<ServeArgs, CliError> {
        let mut argv = vec!["livegate", "serve"];
        argv.extend_from_slice(args);
        match parse_cli_from(argv)?.command {
            Command::Serve(a) => Ok(*a),
            Command::DevToken(_) => panic!("parsed as dev-token"),
        }
    }

    #[test]
    fn the_file_fills_in_what_flags_do_not_say() {
        let f = file(
            r#"
            dev = true
            drain_window = "3s"
            drain-batches = 4
            channels = ["targets", "payment-methods"]
            max_subscriptions = 7
            listen = "127.0.0.1:9999"
            "#,
        );
        let path = f.0.to_str().expect("utf-8 temp path");
        let args = serve(&["--config", path, "--listen", "127.0.0.1:7777"])
            .unwrap_or_else(|e| panic!("{e:?}"));
        let c = args.validate().unwrap_or_else(|e| panic!("{e}"));
        assert!(c.dev);
        assert_eq!(c.drain.window, Duration::from_secs(3));
        assert_eq!(c.drain.batches, 4);
        assert_eq!(c.channels.len(), 2);
        assert_eq!(c.max_subscriptions, 7);
        // The flag wins over the file.
        assert_eq!(c.listen.port(), 7777);
    }

    #[test]
    fn unknown_keys_and_bad_types_are_all_reported() {
        let f = file("nope = 1\nchannels = { a = 1 }\nconfig = \"other.toml\"\n");
        let path = f.0.to_str().expect("utf-8 temp path");
        match serve(&["--config", path]) {
            Err(CliError::File(e)) => {
                let text = e.to_string();
                assert_eq!(e.0.len(), 3, "{text}");
                assert!(text.contains("unknown key \"nope\""), "{text}");
                assert!(text.contains("channels must be"), "{text}");
                assert!(text.contains("unknown key \"config\""), "{text}");
            }
            other => panic!("expected a file error, got {other:?}"),
        }
    }

    #[test]
    fn a_missing_or_broken_file_is_a_configuration_error() {
        assert!(matches!(
            serve(&["--config", "/nonexistent/livegate.toml"]),
            Err(CliError::File(_))
        ));
        let f = file("listen = ");
        let path = f.0.to_str().expect("utf-8 temp path");
        assert!(matches!(serve(&["--config", path]), Err(CliError::File(_))));
    }
}
