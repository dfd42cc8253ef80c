//! The request bodies of the targets API and their validation.
//!
//! Bodies are read as `serde_json::Value` and checked by hand, so that a 422 lists every bad
//! field at once (serde stops at the first). Field names in errors are the plain name for a single
//! object (`target_name`) and a JSON pointer into the array for a bulk PATCH (`/1/is_enabled`).
//! Unknown fields are refused rather than ignored: a typo such as `is_enable` must not be a
//! silent no-op.

use livegate_protocol::FieldError;
use livegate_protocol::target::{PLATFORMS, Platform, TARGET_KINDS, Target, TargetKind};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Longest `target_name`, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest `external_id`, in characters.
pub const MAX_EXTERNAL_ID_CHARS: usize = 128;
/// Most items one bulk PATCH may carry; past it the request is refused whole (422).
pub const MAX_BULK_ITEMS: usize = 100;
/// `limit` of a list when the query names none.
pub const DEFAULT_PAGE_LIMIT: usize = 50;
/// Largest `limit` of a list.
pub const MAX_PAGE_LIMIT: usize = 200;

/// The fields `POST` accepts.
const CREATE_FIELDS: [&str; 9] = [
    "target_id",
    "target_name",
    "platform",
    "kind",
    "external_id",
    "is_enabled",
    "parent_target_id",
    "plan_count",
    "participant_count",
];
/// The fields `PATCH /{target_id}` may change.
const PATCH_FIELDS: [&str; 7] = [
    "target_name",
    "is_enabled",
    "kind",
    "external_id",
    "parent_target_id",
    "plan_count",
    "participant_count",
];
/// The fields of one bulk PATCH item.
const BULK_FIELDS: [&str; 3] = ["target_id", "is_enabled", "target_name"];

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    /// Bad fields, each with its reason.
    Fields(Vec<FieldError>),
    /// A bulk PATCH longer than [`MAX_BULK_ITEMS`].
    TooManyItems(usize),
}

// === create ===

/// A `POST` body: a whole target; `target_id` is optional (a fresh UUID v4 when absent),
/// `is_enabled` defaults to true, `parent_target_id` to null, the counts to 0.
pub fn parse_new_target(body: &Value) -> Result<Target, Invalid> {
    let mut check = Check::new("");
    let Some(obj) = check.object(body) else {
        return Err(check.finish_err());
    };
    check.known_fields(obj, &CREATE_FIELDS);
    let target_id = check.optional_uuid(obj, "target_id");
    let target_name = check.required(obj, "target_name", Check::name);
    let platform = check.required(obj, "platform", Check::platform);
    let kind = check.required(obj, "kind", Check::kind);
    let external_id = check.required(obj, "external_id", Check::external_id);
    let is_enabled = check.optional(obj, "is_enabled", Check::boolean);
    let parent_target_id = check.nullable(obj, "parent_target_id", Check::uuid);
    let plan_count = check.nullable(obj, "plan_count", Check::count);
    let participant_count = check.nullable(obj, "participant_count", Check::count);
    if let (Some(id), Some(Some(parent))) = (target_id, parent_target_id)
        && id == parent
    {
        check.fail("parent_target_id", "a target cannot be its own parent");
    }
    check.finish()?;
    match (target_name, platform, kind, external_id) {
        (Some(target_name), Some(platform), Some(kind), Some(external_id)) => Ok(Target {
            target_id: target_id.unwrap_or_else(Uuid::new_v4),
            target_name,
            platform,
            kind,
            external_id,
            is_enabled: is_enabled.unwrap_or(true),
            parent_target_id: parent_target_id.flatten(),
            // A new target has no plans or members yet (seed 000's `target.added` shows 0);
            // an explicit null leaves the count out.
            plan_count: plan_count.unwrap_or(Some(0)),
            participant_count: participant_count.unwrap_or(Some(0)),
        }),
        // `finish` has reported every missing field already.
        _ => Err(Invalid::Fields(vec![])),
    }
}

// === patch ===

/// A partial change to one target. `None` leaves a field as it is; for the nullable fields,
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetPatch {
    pub target_name: Option<String>,
    pub is_enabled: Option<bool>,
    pub kind: Option<TargetKind>,
    pub external_id: Option<String>,
    pub parent_target_id: Option<Option<Uuid>>,
    pub plan_count: Option<Option<i64>>,
    pub participant_count: Option<Option<i64>>,
}

impl TargetPatch {
    /// Parses a `PATCH /{target_id}` body. A `target_id` in the body must name the path's target;
    /// `platform` cannot change (delete and re-create the target instead).
    pub fn parse(body: &Value, path_target: Uuid) -> Result<TargetPatch, Invalid> {
        let mut check = Check::new("");
        let Some(obj) = check.object(body) else {
            return Err(check.finish_err());
        };
        for key in obj.keys() {
            match key.as_str() {
                "target_id" => match obj.get(key).map(|v| check.uuid("target_id", v)) {
                    Some(Some(id)) if id == path_target => {}
                    Some(Some(_)) => {
                        check.fail("target_id", "does not match the target in the path")
                    }
                    _ => {}
                },
                "platform" => check.fail(
                    "platform",
                    "cannot be changed; delete the target and create it again",
                ),
                k if PATCH_FIELDS.contains(&k) => {}
                k => check.fail(k, "unknown field"),
            }
        }
        let patch = TargetPatch {
            target_name: check.optional(obj, "target_name", Check::name),
            is_enabled: check.optional(obj, "is_enabled", Check::boolean),
            kind: check.optional(obj, "kind", Check::kind),
            external_id: check.optional(obj, "external_id", Check::external_id),
            parent_target_id: check.nullable(obj, "parent_target_id", Check::uuid),
            plan_count: check.nullable(obj, "plan_count", Check::count),
            participant_count: check.nullable(obj, "participant_count", Check::count),
        };
        if patch.parent_target_id == Some(Some(path_target)) {
            check.fail("parent_target_id", "a target cannot be its own parent");
        }
        check.finish()?;
        Ok(patch)
    }

    /// The snapshot after this change.
    pub fn apply(&self, before: &Target) -> Target {
        let mut after = before.clone();
        if let Some(v) = &self.target_name {
            after.target_name.clone_from(v);
        }
        if let Some(v) = self.is_enabled {
            after.is_enabled = v;
        }
        if let Some(v) = self.kind {
            after.kind = v;
        }
        if let Some(v) = &self.external_id {
            after.external_id.clone_from(v);
        }
        if let Some(v) = self.parent_target_id {
            after.parent_target_id = v;
        }
        if let Some(v) = self.plan_count {
            after.plan_count = v;
        }
        if let Some(v) = self.participant_count {
            after.participant_count = v;
        }
        after
    }
}

/// Parses a bulk PATCH body: a non-empty array of `{target_id, is_enabled?, target_name?}`,
/// at most [`MAX_BULK_ITEMS`] long, each target named once. The whole array is checked before
/// anything is applied.
pub fn parse_bulk(body: &Value) -> Result<Vec<(Uuid, TargetPatch)>, Invalid> {
    let Value::Array(items) = body else {
        return Err(Invalid::Fields(vec![FieldError::new(
            "",
            "must be a JSON array of {target_id, is_enabled?, target_name?}",
        )]));
    };
    if items.is_empty() {
        return Err(Invalid::Fields(vec![FieldError::new(
            "",
            "must name at least one target",
        )]));
    }
    if items.len() > MAX_BULK_ITEMS {
        return Err(Invalid::TooManyItems(items.len()));
    }
    let mut errors = Vec::new();
    let mut parsed: Vec<(Uuid, TargetPatch)> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let mut check = Check::new(&format!("/{index}"));
        if let Some(obj) = check.object(item) {
            check.known_fields(obj, &BULK_FIELDS);
            let target_id = check.required(obj, "target_id", Check::uuid);
            let patch = TargetPatch {
                target_name: check.optional(obj, "target_name", Check::name),
                is_enabled: check.optional(obj, "is_enabled", Check::boolean),
                ..TargetPatch::default()
            };
            if let Some(id) = target_id {
                if parsed.iter().any(|(seen, _)| *seen == id) {
                    check.fail(
                        "target_id",
                        "names a target that appears earlier in the array",
                    );
                } else {
                    parsed.push((id, patch));
                }
            }
        }
        errors.append(&mut check.errors);
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(Invalid::Fields(errors))
    }
}

// === list ===

/// `?limit=&offset=` of a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: usize,
    pub offset: usize,
}

impl Page {
    /// Parses the raw query string. Other parameters are ignored; a bad value is a 422.
    pub fn parse(query: Option<&str>) -> Result<Page, Invalid> {
        let mut page = Page {
            limit: DEFAULT_PAGE_LIMIT,
            offset: 0,
        };
        let mut errors = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "limit" => match value.parse::<usize>() {
                    Ok(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => page.limit = n,
                    _ => errors.push(FieldError::new(
                        "limit",
                        format!("must be an integer from 1 to {MAX_PAGE_LIMIT}"),
                    )),
                },
                "offset" => match value.parse::<usize>() {
                    Ok(n) => page.offset = n,
                    Err(_) => errors.push(FieldError::new("offset", "must be an integer from 0")),
                },
                _ => {}
            }
        }
        if errors.is_empty() {
            Ok(page)
        } else {
            Err(Invalid::Fields(errors))
        }
    }
}

// === impl Check ===

/// Collects the field errors of one JSON object.
struct Check {
    /// `""` for a top-level object, `/3` for item 3 of a bulk array.
    prefix: String,
    errors: Vec<FieldError>,
}

impl Check {
    fn new(prefix: &str) -> Self {
        Check {
            prefix: prefix.to_owned(),
            errors: Vec::new(),
        }
    }

    fn field(&self, key: &str) -> String {
        match (self.prefix.is_empty(), key.is_empty()) {
            (true, _) => key.to_owned(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{}", self.prefix, key),
        }
    }

    fn fail(&mut self, key: &str, why: impl Into<String>) {
        let field = self.field(key);
        self.errors.push(FieldError::new(field, why));
    }

    fn finish(&mut self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid::Fields(std::mem::take(&mut self.errors)))
        }
    }

    fn finish_err(&mut self) -> Invalid {
        Invalid::Fields(std::mem::take(&mut self.errors))
    }

    fn object<'v>(&mut self, value: &'v Value) -> Option<&'v Map<String, Value>> {
        let obj = value.as_object();
        if obj.is_none() {
            self.fail("", "must be a JSON object");
        }
        obj
    }

    fn known_fields(&mut self, obj: &Map<String, Value>, allowed: &[&str]) {
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) {
                self.fail(key, "unknown field");
            }
        }
    }

    /// A field that must be present and valid.
    fn required<T>(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        parse: fn(&mut Self, &str, &Value) -> Option<T>,
    ) -> Option<T> {
        match obj.get(key) {
            None | Some(Value::Null) => {
                self.fail(key, "is required");
                None
            }
            Some(v) => parse(self, key, v),
        }
    }

    /// A field that may be absent, but not null.
    fn optional<T>(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        parse: fn(&mut Self, &str, &Value) -> Option<T>,
    ) -> Option<T> {
        match obj.get(key) {
            None => None,
            Some(Value::Null) => {
                self.fail(key, "must not be null");
                None
            }
            Some(v) => parse(self, key, v),
        }
    }

    /// A field that may be absent (`None`) or null (`Some(None)`).
    fn nullable<T>(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        parse: fn(&mut Self, &str, &Value) -> Option<T>,
    ) -> Option<Option<T>> {
        match obj.get(key) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(v) => parse(self, key, v).map(Some),
        }
    }

    fn optional_uuid(&mut self, obj: &Map<String, Value>, key: &str) -> Option<Uuid> {
        self.nullable(obj, key, Check::uuid).flatten()
    }

    fn uuid(&mut self, key: &str, v: &Value) -> Option<Uuid> {
        let id = v.as_str().and_then(|s| Uuid::parse_str(s).ok());
        if id.is_none() {
            self.fail(key, "must be a UUID string");
        }
        id
    }

    fn boolean(&mut self, key: &str, v: &Value) -> Option<bool> {
        let b = v.as_bool();
        if b.is_none() {
            self.fail(key, "must be true or false");
        }
        b
    }

    fn text(&mut self, key: &str, v: &Value, max: usize) -> Option<String> {
        let Some(s) = v.as_str() else {
            self.fail(key, "must be a string");
            return None;
        };
        let s = s.trim();
        if s.is_empty() {
            self.fail(key, "must not be empty");
            None
        } else if s.chars().count() > max {
            self.fail(key, format!("must be at most {max} characters"));
            None
        } else {
            Some(s.to_owned())
        }
    }

    fn name(&mut self, key: &str, v: &Value) -> Option<String> {
        self.text(key, v, MAX_NAME_CHARS)
    }

    fn external_id(&mut self, key: &str, v: &Value) -> Option<String> {
        if v.is_number() {
            self.fail(key, "must be a string (platform ids overflow JSON numbers)");
            return None;
        }
        self.text(key, v, MAX_EXTERNAL_ID_CHARS)
    }

    fn platform(&mut self, key: &str, v: &Value) -> Option<Platform> {
        let p = serde_json::from_value(v.clone()).ok();
        if p.is_none() {
            self.fail(key, format!("must be one of {}", PLATFORMS.join(", ")));
        }
        p
    }

    fn kind(&mut self, key: &str, v: &Value) -> Option<TargetKind> {
        let k = serde_json::from_value(v.clone()).ok();
        if k.is_none() {
            self.fail(key, format!("must be one of {}", TARGET_KINDS.join(", ")));
        }
        k
    }

    fn count(&mut self, key: &str, v: &Value) -> Option<i64> {
        let n = v.as_i64().filter(|n| *n >= 0);
        if n.is_none() {
            self.fail(key, "must be a non-negative integer or null");
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(r: Invalid) -> Vec<String> {
        match r {
            Invalid::Fields(f) => f.into_iter().map(|e| e.field).collect(),
            Invalid::TooManyItems(n) => vec![format!("too many: {n}")],
        }
    }

    fn full() -> Value {
        json!({"target_name": "  My Server ", "platform": "discord", "kind": "guild",
               "external_id": "123", "plan_count": 3})
    }

    #[test]
    fn create_fills_defaults_and_trims() {
        let t = parse_new_target(&full()).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(t.target_id.get_version_num(), 4, "assigned");
        assert_eq!(t.target_name, "My Server");
        assert!(t.is_enabled);
        assert_eq!(t.parent_target_id, None);
        assert_eq!(t.plan_count, Some(3));
        assert_eq!(t.participant_count, Some(0));
        let mut no_counts = full();
        no_counts["plan_count"] = Value::Null;
        assert_eq!(
            parse_new_target(&no_counts).ok().map(|t| t.plan_count),
            Some(None)
        );
        let mut with_id = full();
        with_id["target_id"] = json!(Uuid::from_u128(8));
        let t = parse_new_target(&with_id).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(t.target_id, Uuid::from_u128(8));
    }

    #[test]
    fn create_lists_every_bad_field() {
        let body = json!({"target_id": "x", "target_name": "", "platform": "slack",
            "kind": 3, "external_id": 12345, "is_enabled": "yes", "parent_target_id": "nope",
            "plan_count": -1, "participant_count": 1.5, "colour": "red"});
        let mut got = fields(
            parse_new_target(&body)
                .err()
                .unwrap_or_else(|| panic!("must fail")),
        );
        got.sort();
        let mut want = vec![
            "colour",
            "external_id",
            "is_enabled",
            "kind",
            "parent_target_id",
            "participant_count",
            "plan_count",
            "platform",
            "target_id",
            "target_name",
        ];
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn create_reports_missing_fields_and_non_objects() {
        let got = fields(
            parse_new_target(&json!({}))
                .err()
                .unwrap_or_else(|| panic!()),
        );
        assert_eq!(got, vec!["target_name", "platform", "kind", "external_id"]);
        let got = fields(
            parse_new_target(&json!([1]))
                .err()
                .unwrap_or_else(|| panic!()),
        );
        assert_eq!(got, vec![""]);
    }

    #[test]
    fn create_refuses_a_self_parent() {
        let id = Uuid::from_u128(5);
        let mut body = full();
        body["target_id"] = json!(id);
        body["parent_target_id"] = json!(id);
        let got = fields(parse_new_target(&body).err().unwrap_or_else(|| panic!()));
        assert_eq!(got, vec!["parent_target_id"]);
    }

    #[test]
    fn patch_parses_each_field() {
        let id = Uuid::from_u128(1);
        let parent = Uuid::from_u128(2);
        let p = TargetPatch::parse(
            &json!({"target_name": "x", "is_enabled": false, "kind": "role", "external_id": "9",
                    "parent_target_id": parent, "plan_count": null, "participant_count": 4,
                    "target_id": id}),
            id,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(p.target_name.as_deref(), Some("x"));
        assert_eq!(p.is_enabled, Some(false));
        assert_eq!(p.kind, Some(TargetKind::Role));
        assert_eq!(p.parent_target_id, Some(Some(parent)));
        assert_eq!(p.plan_count, Some(None));
        assert_eq!(p.participant_count, Some(Some(4)));
        assert_eq!(
            TargetPatch::parse(&json!({}), id),
            Ok(TargetPatch::default())
        );
    }

    #[test]
    fn patch_refuses_platform_foreign_ids_and_nulls() {
        let id = Uuid::from_u128(1);
        let body = json!({"platform": "telegram", "target_id": Uuid::from_u128(3),
                          "target_name": null, "is_enabled": null, "parent_target_id": id,
                          "extra": 1});
        let mut got = fields(
            TargetPatch::parse(&body, id)
                .err()
                .unwrap_or_else(|| panic!()),
        );
        got.sort();
        assert_eq!(
            got,
            vec![
                "extra",
                "is_enabled",
                "parent_target_id",
                "platform",
                "target_id",
                "target_name"
            ]
        );
    }

    #[test]
    fn apply_changes_only_what_is_named() {
        let before = parse_new_target(&full()).unwrap_or_else(|e| panic!("{e:?}"));
        let patch = TargetPatch {
            is_enabled: Some(false),
            plan_count: Some(None),
            ..TargetPatch::default()
        };
        let after = patch.apply(&before);
        assert!(!after.is_enabled);
        assert_eq!(after.plan_count, None);
        assert_eq!(after.target_name, before.target_name);
        assert_eq!(TargetPatch::default().apply(&before), before);
    }

    #[test]
    fn bulk_is_checked_whole() {
        let a = Uuid::from_u128(1);
        let body = json!([
            {"target_id": a, "is_enabled": true},
            {"target_id": "bad", "kind": "role"},
            {"target_id": a, "target_name": ""},
            "x"
        ]);
        assert_eq!(
            fields(parse_bulk(&body).err().unwrap_or_else(|| panic!())),
            vec![
                "/1/kind",
                "/1/target_id",
                "/2/target_name",
                "/2/target_id",
                "/3"
            ]
        );
        assert_eq!(
            fields(parse_bulk(&json!([])).err().unwrap_or_else(|| panic!())),
            vec![""]
        );
        assert_eq!(
            fields(parse_bulk(&json!({})).err().unwrap_or_else(|| panic!())),
            vec![""]
        );
        let many: Vec<Value> = (0..=MAX_BULK_ITEMS as u128)
            .map(|i| json!({"target_id": Uuid::from_u128(i)}))
            .collect();
        assert_eq!(
            parse_bulk(&Value::Array(many)),
            Err(Invalid::TooManyItems(MAX_BULK_ITEMS + 1))
        );
        let ok = parse_bulk(&json!([{"target_id": a, "target_name": "n"}]))
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(ok[0].1.target_name.as_deref(), Some("n"));
    }

    #[test]
    fn page_defaults_and_bounds() {
        assert_eq!(
            Page::parse(None),
            Ok(Page {
                limit: DEFAULT_PAGE_LIMIT,
                offset: 0
            })
        );
        assert_eq!(
            Page::parse(Some("limit=200&offset=7&x=1")),
            Ok(Page {
                limit: 200,
                offset: 7
            })
        );
        for bad in ["limit=0", "limit=201", "limit=x", "offset=-1", "limit="] {
            assert!(Page::parse(Some(bad)).is_err(), "{bad}");
        }
    }
}
