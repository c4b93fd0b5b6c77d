//! Structural validation of FHIR R5 JSON resources: the resource type, the
//! elements each type defines (unknown ones are refused), cardinalities
//! (a JSON array exactly where the element repeats), required elements,
//! choice elements (`value[x]`: one allowed type, at most one present) and
//! the lexical form of every primitive.
//!
//! Every resource type the node serves has an element table taken from the
//! R5 (5.0.0) definitions, with its backbone elements and the datatypes they
//! use checked recursively. A few datatypes are accepted as any non-empty
//! object because no served element needs more (VirtualServiceDetail,
//! RelatedArtifact) or because they only appear as extension values
//! (Availability, ContactDetail, DataRequirement, ParameterDefinition,
//! TriggerDefinition, UsageContext). Resources of other types held in
//! `contained` are checked only for a well-formed `resourceType` and `id`;
//! contained resources of served types are checked in full.
//!
//! Terminology bindings, invariants (FHIRPath constraints) and reference
//! targets are not checked: they need terminology services and other
//! resources, and the node's own checks (consent, references to the
//! patient) happen elsewhere.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::outcome::Issue;
use crate::reference::is_valid_id;
use crate::types::ResourceType;

/// Issues collected before the walk stops: enough to fix a resource, few
/// enough that a hostile one cannot make the answer large.
const MAX_ISSUES: usize = 100;

/// How many objects deep the walk goes. serde_json stops parsing at 128
/// levels, but a `Value` built in code has no such limit; recursion here
/// must stay bounded either way. Real resources nest far less (nested
/// Consent provisions and extensions are the deepest, a handful of levels).
const MAX_DEPTH: usize = 48;

/// Checks a resource's type, required elements, cardinalities and datatypes.
/// `expected`: the type the URL names, if any (a mismatch is an issue at `resourceType`).
pub fn validate(
    resource: &Value,
    expected: Option<ResourceType>,
) -> Result<ResourceType, Vec<Issue>> {
    let Some(obj) = resource.as_object() else {
        return Err(vec![Issue::error(
            "structure",
            format!("a resource must be a JSON object, not {}", kind(resource)),
        )]);
    };
    let mut walk = Walk::default();
    let Some(resource_type) = walk.root_type(obj, expected) else {
        return Err(walk.issues);
    };
    walk.path.push_str(resource_type.as_str());
    let base = Base::Resource { contained: false };
    walk.check_object(obj, base, table_of(resource_type), 0);
    walk.into_result(resource_type)
}

// ---------------------------------------------------------------------------
// The walk

/// Where the walk is (a FHIRPath naming the current element) and the issues
/// found so far.
#[derive(Default)]
struct Walk {
    path: String,
    issues: Vec<Issue>,
}

/// What an object is, which decides the elements every one of its kind has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Base {
    /// A datatype: `id`, `extension`.
    Data,
    /// A backbone element or backbone datatype: `modifierExtension` too.
    Backbone,
    /// A resource (`contained` when it sits inside another one).
    Resource { contained: bool },
}

impl Base {
    fn elements(self) -> &'static [El] {
        match self {
            Base::Data => DATA_BASE,
            Base::Backbone => BACKBONE_BASE,
            Base::Resource { .. } => RESOURCE_BASE,
        }
    }
}

/// What a JSON member name refers to.
enum Found {
    /// An element, with the type it has (for a choice, the variant's type and suffix).
    Element(&'static El, Ty, Option<&'static str>),
    /// A choice element's name with a type it does not allow.
    BadType(&'static El),
    Unknown,
}

impl Walk {
    fn is_full(&self) -> bool {
        self.issues.len() >= MAX_ISSUES
    }

    /// An issue at the current element.
    fn report(&mut self, code: &'static str, message: impl std::fmt::Display) {
        if !self.is_full() {
            let issue = Issue::error(code, format!("{}: {message}", self.path));
            self.issues.push(issue.at(self.path.as_str()));
        }
    }

    /// An issue at a member of the current element (`segment` starts with
    /// `.` or `[`).
    fn report_at(
        &mut self,
        segment: impl std::fmt::Display,
        code: &'static str,
        message: impl std::fmt::Display,
    ) {
        let len = self.path.len();
        let _ = write!(self.path, "{segment}");
        self.report(code, message);
        self.path.truncate(len);
    }

    fn into_result(mut self, resource_type: ResourceType) -> Result<ResourceType, Vec<Issue>> {
        if self.issues.is_empty() {
            return Ok(resource_type);
        }
        if self.is_full() {
            self.issues.push(Issue::warning(
                "too-costly",
                format!("validation stopped after {MAX_ISSUES} issues"),
            ));
        }
        Err(self.issues)
    }

    /// The resource type a resource names, checked against the one expected.
    /// Issues here are at `resourceType`, outside any element path.
    fn root_type(
        &mut self,
        obj: &Map<String, Value>,
        expected: Option<ResourceType>,
    ) -> Option<ResourceType> {
        self.path.push_str("resourceType");
        let found = self.resource_type_of(obj, expected);
        self.path.clear();
        found
    }

    fn resource_type_of(
        &mut self,
        obj: &Map<String, Value>,
        expected: Option<ResourceType>,
    ) -> Option<ResourceType> {
        let name = match obj.get("resourceType") {
            Some(Value::String(name)) => name,
            Some(other) => {
                self.report(
                    "structure",
                    format_args!("must be a string, not {}", kind(other)),
                );
                return None;
            }
            None => {
                self.report("required", "a resource must name its type");
                return None;
            }
        };
        let Ok(resource_type) = name.parse::<ResourceType>() else {
            if is_type_name(name) {
                let message = format_args!("{} is not supported by this server", shorten(name));
                self.report("not-supported", message);
            } else {
                let message = format_args!("{:?} is not a resource type name", shorten(name));
                self.report("invalid", message);
            }
            return None;
        };
        if let Some(expected) = expected.filter(|e| *e != resource_type) {
            let message =
                format_args!("{resource_type} does not match {expected}, the type the URL names");
            self.report("invalid", message);
        }
        Some(resource_type)
    }

    /// Checks every member of `obj` against `table` (plus what every object
    /// of its kind has), then the required elements and choice elements.
    fn check_object(
        &mut self,
        obj: &Map<String, Value>,
        base: Base,
        table: &'static [El],
        depth: usize,
    ) {
        let tables = [base.elements(), table];
        for (key, value) in obj {
            if self.is_full() {
                return;
            }
            self.check_member(obj, key, value, base, tables, depth);
        }
        self.check_required(obj, tables);
        self.check_one_choice(obj, tables);
    }

    fn check_member(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        value: &Value,
        base: Base,
        tables: [&'static [El]; 2],
        depth: usize,
    ) {
        if let Base::Resource { contained } = base {
            if key == "resourceType" {
                return; // read before the walk
            }
            if contained && key == "contained" {
                let message = "a contained resource must not contain resources (dom-2)";
                self.report_at(".contained", "structure", message);
                return;
            }
        }
        let (sibling, name) = match key.strip_prefix('_') {
            Some(name) => (true, name),
            None => (false, key),
        };
        match find(name, tables) {
            Found::Unknown => {
                self.report_at(
                    format_args!(".{}", shorten(key)),
                    "structure",
                    "unknown element",
                );
            }
            Found::BadType(el) => {
                let message = format_args!("not an allowed type for {}[x]", el.name);
                self.report_at(format_args!(".{}", shorten(key)), "structure", message);
            }
            Found::Element(el, ty, variant) => {
                let len = self.path.len();
                push_segment(&mut self.path, el, ty, variant);
                if sibling {
                    self.check_sibling(obj, name, el, ty, value, depth);
                } else {
                    self.check_element(obj, name, el, ty, value, depth);
                }
                self.path.truncate(len);
            }
        }
    }

    /// An element's value: an array exactly when the element repeats.
    fn check_element(
        &mut self,
        obj: &Map<String, Value>,
        name: &str,
        el: &El,
        ty: Ty,
        value: &Value,
        depth: usize,
    ) {
        if !el.many {
            match value {
                Value::Array(_) => self.report("structure", "must be a single value, not an array"),
                Value::Null => self.report("structure", "must not be null"),
                _ => self.check_value(value, ty, depth),
            }
            return;
        }
        let Some(items) = self.non_empty_array(value, "") else {
            return;
        };
        let extensions = obj.get(&format!("_{name}")).and_then(Value::as_array);
        for (i, item) in items.iter().enumerate() {
            if self.is_full() {
                return;
            }
            let len = self.path.len();
            let _ = write!(self.path, "[{i}]");
            if !item.is_null() {
                self.check_value(item, ty, depth);
            } else if !(ty.is_primitive() && has_object_at(extensions, i)) {
                let message = format_args!(
                    "null is allowed only where _{name} holds an extension for the item"
                );
                self.report("structure", message);
            }
            self.path.truncate(len);
        }
    }

    /// The items of a repeating element (or of its `_name` sibling, `prefix`
    /// `_`): a JSON array with at least one item.
    fn non_empty_array<'v>(&mut self, value: &'v Value, prefix: &str) -> Option<&'v [Value]> {
        match value.as_array() {
            Some(items) if !items.is_empty() => Some(items),
            Some(_) => {
                self.report(
                    "structure",
                    format_args!("{prefix}must not be an empty array"),
                );
                None
            }
            None => {
                let message =
                    format_args!("{prefix}repeats, so must be an array, not {}", kind(value));
                self.report("structure", message);
                None
            }
        }
    }

    /// `_name`: the id and extensions of a primitive element (an object, or
    /// an array of objects and nulls parallel to the element's array).
    fn check_sibling(
        &mut self,
        obj: &Map<String, Value>,
        name: &str,
        el: &El,
        ty: Ty,
        value: &Value,
        depth: usize,
    ) {
        if !ty.is_primitive() {
            let message = format_args!("_{name}: only primitive elements have a _ sibling");
            self.report("structure", message);
            return;
        }
        if !el.many {
            if value.is_array() {
                self.report("structure", format_args!("_{name} must not be an array"));
            } else {
                self.check_value(value, ELEMENT, depth);
            }
            return;
        }
        let Some(items) = self.non_empty_array(value, &format!("_{name} ")) else {
            return;
        };
        let values = obj.get(name).and_then(Value::as_array);
        if values.is_some_and(|values| values.len() != items.len()) {
            let message = format_args!("_{name} must have as many items as {name}");
            self.report("structure", message);
        }
        for (i, item) in items.iter().enumerate() {
            if item.is_null() || self.is_full() {
                continue;
            }
            let len = self.path.len();
            let _ = write!(self.path, "[{i}]");
            self.check_value(item, ELEMENT, depth);
            self.path.truncate(len);
        }
    }

    /// One value of an element.
    fn check_value(&mut self, value: &Value, ty: Ty, depth: usize) {
        match ty {
            Ty::Prim(prim) => {
                if let Some((code, message)) = primitive_problem(value, prim) {
                    self.report(code, message);
                }
            }
            Ty::Data(table) => self.check_complex(value, Base::Data, table(), depth),
            Ty::Backbone(table) => self.check_complex(value, Base::Backbone, table(), depth),
            Ty::Object => {
                self.non_empty_object(value);
            }
            Ty::Resource => self.check_contained(value, depth),
        }
    }

    fn check_complex(&mut self, value: &Value, base: Base, table: &'static [El], depth: usize) {
        let Some(obj) = self.non_empty_object(value) else {
            return;
        };
        if depth >= MAX_DEPTH {
            self.report("structure", "nested too deeply");
            return;
        }
        self.check_object(obj, base, table, depth + 1);
    }

    /// A value that must be a JSON object with content (FHIR JSON has no
    /// empty objects).
    fn non_empty_object<'v>(&mut self, value: &'v Value) -> Option<&'v Map<String, Value>> {
        match value.as_object() {
            Some(obj) if !obj.is_empty() => Some(obj),
            Some(_) => {
                self.report("structure", "must not be an empty object");
                None
            }
            None => {
                let message = format_args!("must be a JSON object, not {}", kind(value));
                self.report("structure", message);
                None
            }
        }
    }

    /// A resource in `contained`: served types are checked in full; others
    /// only for their type name and id (this server has no tables for them).
    fn check_contained(&mut self, value: &Value, depth: usize) {
        let Some(obj) = self.non_empty_object(value) else {
            return;
        };
        if depth >= MAX_DEPTH {
            self.report("structure", "nested too deeply");
            return;
        }
        let name = match obj.get("resourceType") {
            Some(Value::String(name)) => name,
            Some(other) => {
                let message = format_args!("resourceType must be a string, not {}", kind(other));
                self.report("structure", message);
                return;
            }
            None => {
                self.report(
                    "required",
                    "a contained resource must name its resourceType",
                );
                return;
            }
        };
        if let Ok(resource_type) = name.parse::<ResourceType>() {
            let base = Base::Resource { contained: true };
            self.check_object(obj, base, table_of(resource_type), depth + 1);
        } else if is_type_name(name) {
            self.check_other_resource(obj, depth);
        } else {
            let message = format_args!("{:?} is not a resource type name", shorten(name));
            self.report("invalid", message);
        }
    }

    /// What can be checked of a resource of a type this server has no table
    /// for.
    fn check_other_resource(&mut self, obj: &Map<String, Value>, depth: usize) {
        if let Some(id) = obj.get("id") {
            let len = self.path.len();
            self.path.push_str(".id");
            self.check_value(id, ID, depth);
            self.path.truncate(len);
        }
        if obj.contains_key("contained") {
            let message = "a contained resource must not contain resources (dom-2)";
            self.report_at(".contained", "structure", message);
        }
    }

    /// Required elements (min 1). A primitive counts as present when only its
    /// `_name` sibling is there: FHIR allows an extension in place of the
    /// value (e.g. a data-absent-reason).
    fn check_required(&mut self, obj: &Map<String, Value>, tables: [&'static [El]; 2]) {
        for el in tables.into_iter().flatten().filter(|el| el.required) {
            let present = obj
                .keys()
                .any(|key| names_element(key.strip_prefix('_').unwrap_or(key), el));
            if !present {
                let suffix = if matches!(el.kind, Kind::Choice(_)) {
                    "[x]"
                } else {
                    ""
                };
                let message = format_args!("{}{suffix} is required", el.name);
                self.report_at(format_args!(".{}", el.name), "required", message);
            }
        }
    }

    /// A choice element holds one type at most (`deceasedBoolean` or
    /// `deceasedDateTime`, never both).
    fn check_one_choice(&mut self, obj: &Map<String, Value>, tables: [&'static [El]; 2]) {
        let choices = tables
            .into_iter()
            .flatten()
            .filter(|el| matches!(el.kind, Kind::Choice(_)));
        for el in choices {
            let mut names = obj
                .keys()
                .map(|key| key.strip_prefix('_').unwrap_or(key))
                .filter(|key| names_element(key, el));
            let Some(first) = names.next() else {
                continue;
            };
            if let Some(other) = names.find(|key| *key != first) {
                let message = format_args!(
                    "{}[x] may hold one type only, not both {first} and {other}",
                    el.name
                );
                self.report_at(format_args!(".{}", el.name), "structure", message);
            }
        }
    }
}

/// The form of a FHIR type name: a capital letter, then letters.
fn is_type_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 64
        && chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_alphabetic())
}

/// At most 64 characters of a name from the input, for messages: a member
/// name can be as long as the request.
fn shorten(s: &str) -> &str {
    s.char_indices().nth(64).map_or(s, |(end, _)| &s[..end])
}

fn find(name: &str, tables: [&'static [El]; 2]) -> Found {
    let all = || tables.into_iter().flatten();
    let plain = all().find_map(|el| match el.kind {
        Kind::One(ty) if el.name == name => Some((el, ty)),
        _ => None,
    });
    if let Some((el, ty)) = plain {
        return Found::Element(el, ty, None);
    }
    for el in all() {
        let Kind::Choice(types) = el.kind else {
            continue;
        };
        let Some(suffix) = name.strip_prefix(el.name) else {
            continue;
        };
        if !suffix.starts_with(|c: char| c.is_ascii_uppercase()) {
            continue;
        }
        return match types.iter().find(|(s, _)| *s == suffix) {
            Some(&(suffix, ty)) => Found::Element(el, ty, Some(suffix)),
            None => Found::BadType(el),
        };
    }
    Found::Unknown
}

/// Appends an element to a FHIRPath: `.status`, or `.value.ofType(Quantity)`
/// for a choice element.
fn push_segment(path: &mut String, el: &El, ty: Ty, variant: Option<&str>) {
    path.push('.');
    path.push_str(el.name);
    if let Some(variant) = variant {
        path.push_str(".ofType(");
        let mut chars = variant.chars();
        if let (Ty::Prim(_), Some(first)) = (ty, chars.next()) {
            // Primitive type names start in lower case (`dateTime`).
            path.push(first.to_ascii_lowercase());
            path.push_str(chars.as_str());
        } else {
            path.push_str(variant);
        }
        path.push(')');
    }
}

fn has_object_at(items: Option<&Vec<Value>>, i: usize) -> bool {
    items
        .and_then(|items| items.get(i))
        .is_some_and(Value::is_object)
}

/// Whether JSON member `key` (without a leading `_`) is element `el`.
fn names_element(key: &str, el: &El) -> bool {
    match el.kind {
        Kind::One(_) => key == el.name,
        Kind::Choice(types) => key
            .strip_prefix(el.name)
            .is_some_and(|suffix| types.iter().any(|(s, _)| *s == suffix)),
    }
}

/// The JSON kind of a value, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------
// Primitives

/// The FHIR primitive types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prim {
    Boolean,
    Integer,
    Integer64,
    PositiveInt,
    UnsignedInt,
    Decimal,
    String,
    Markdown,
    Code,
    Id,
    Uri,
    Url,
    Canonical,
    Oid,
    Uuid,
    Base64Binary,
    Date,
    DateTime,
    Instant,
    Time,
    Xhtml,
}

impl Prim {
    fn name(self) -> &'static str {
        match self {
            Prim::Boolean => "boolean",
            Prim::Integer => "integer",
            Prim::Integer64 => "integer64",
            Prim::PositiveInt => "positiveInt",
            Prim::UnsignedInt => "unsignedInt",
            Prim::Decimal => "decimal",
            Prim::String => "string",
            Prim::Markdown => "markdown",
            Prim::Code => "code",
            Prim::Id => "id",
            Prim::Uri => "uri",
            Prim::Url => "url",
            Prim::Canonical => "canonical",
            Prim::Oid => "oid",
            Prim::Uuid => "uuid",
            Prim::Base64Binary => "base64Binary",
            Prim::Date => "date",
            Prim::DateTime => "dateTime",
            Prim::Instant => "instant",
            Prim::Time => "time",
            Prim::Xhtml => "xhtml",
        }
    }
}

/// What is wrong with a primitive value, if anything: the wrong JSON kind
/// (`structure`) or a bad lexical form (`value`).
fn primitive_problem(value: &Value, prim: Prim) -> Option<(&'static str, String)> {
    match prim {
        Prim::Boolean => (!value.is_boolean()).then(|| kind_problem("a boolean", value)),
        Prim::Decimal => (!value.is_number()).then(|| kind_problem("a number", value)),
        Prim::Integer | Prim::PositiveInt | Prim::UnsignedInt => integer_problem(value, prim),
        _ => match value.as_str() {
            Some(s) => string_problem(s, prim).map(|message| ("value", message)),
            None => Some(kind_problem("a string", value)),
        },
    }
}

fn kind_problem(expected: &str, value: &Value) -> (&'static str, String) {
    let message = format!("must be {expected}, not {}", kind(value));
    ("structure", message)
}

/// integer, positiveInt, unsignedInt: a JSON number without a fraction,
/// in the 32-bit range FHIR gives them.
fn integer_problem(value: &Value, prim: Prim) -> Option<(&'static str, String)> {
    if !value.is_number() {
        return Some(kind_problem("an integer", value));
    }
    let min = match prim {
        Prim::PositiveInt => 1,
        Prim::UnsignedInt => 0,
        _ => i64::from(i32::MIN),
    };
    let fits = value
        .as_i64()
        .is_some_and(|n| (min..=i64::from(i32::MAX)).contains(&n));
    (!fits).then(|| ("value", format!("{value} is not a valid {}", prim.name())))
}

/// The lexical rules of the primitives JSON writes as strings.
fn string_problem(s: &str, prim: Prim) -> Option<String> {
    if s.is_empty() {
        return Some("must not be an empty string".to_owned());
    }
    // FHIR datatypes, string: no code point below U+0020 but tab,
    // carriage return and line feed (in every primitive written as a
    // string).
    if let Some(c) = s
        .chars()
        .find(|c| *c < '\u{20}' && !matches!(c, '\t' | '\r' | '\n'))
    {
        return Some(format!(
            "contains the control character U+{:04X}: FHIR strings allow none below U+0020 but tab, carriage return and line feed",
            c as u32
        ));
    }
    let valid = match prim {
        Prim::Code => is_code(s),
        Prim::Id => is_valid_id(s),
        Prim::Uri | Prim::Url | Prim::Canonical => !s.chars().any(char::is_whitespace),
        Prim::Oid => is_oid(s),
        Prim::Uuid => is_uuid(s),
        Prim::Base64Binary => is_base64(s),
        Prim::Integer64 => is_integer64(s),
        Prim::Date => is_date(s),
        Prim::DateTime => is_date_time(s),
        Prim::Instant => is_instant(s),
        Prim::Time => is_time(s),
        Prim::Xhtml => is_xhtml_div(s),
        // Any non-empty text (leading and trailing space included).
        _ => true,
    };
    (!valid).then(|| {
        let shown: String = s.chars().take(64).collect();
        format!("{shown:?} is not a valid {}", prim.name())
    })
}

/// code: tokens separated by single spaces, no other whitespace.
fn is_code(s: &str) -> bool {
    s.split(' ')
        .all(|token| !token.is_empty() && !token.chars().any(char::is_whitespace))
}

/// oid: `urn:oid:` and dotted numbers without leading zeros, first 0 to 2.
fn is_oid(s: &str) -> bool {
    let Some(arcs) = s.strip_prefix("urn:oid:") else {
        return false;
    };
    let mut parts = arcs.split('.');
    let first_ok = parts.next().is_some_and(|p| matches!(p, "0" | "1" | "2"));
    let mut rest = parts.peekable();
    first_ok
        && rest.peek().is_some()
        && rest.all(|p| {
            !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (p == "0" || !p.starts_with('0'))
        })
}

/// uuid: `urn:uuid:` and a lower-case RFC 4122 UUID.
fn is_uuid(s: &str) -> bool {
    let Some(uuid) = s.strip_prefix("urn:uuid:") else {
        return false;
    };
    uuid.len() == 36
        && uuid.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// base64Binary: padded base64; whitespace between groups is allowed.
fn is_base64(s: &str) -> bool {
    let bytes: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return false;
    }
    let padding = bytes.iter().rev().take_while(|b| **b == b'=').count();
    padding <= 2
        && bytes[..bytes.len() - padding]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// integer64 (a JSON string): `0`, or an optional sign and digits without
/// leading zeros, within 64 bits.
fn is_integer64(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let well_formed = s == "0"
        || (!digits.starts_with('0')
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit()));
    well_formed && s.parse::<i64>().is_ok()
}

/// xhtml (Narrative.div): must be a `div` element.
fn is_xhtml_div(s: &str) -> bool {
    let s = s.trim();
    s.starts_with("<div") && s.ends_with('>')
}

/// `n` ASCII digits at `at`, as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = b.get(at..at.checked_add(n)?)?;
    part.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    let leap = year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400));
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// YYYY, YYYY-MM or YYYY-MM-DD at the start of `b` (a real calendar date,
/// year 0001 to 9999): how many bytes it takes.
fn date_prefix(b: &[u8]) -> Option<usize> {
    let year = digits(b, 0, 4)?;
    if year == 0 {
        return None;
    }
    if b.get(4) != Some(&b'-') {
        return Some(4);
    }
    let month = digits(b, 5, 2)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    if b.get(7) != Some(&b'-') {
        return Some(7);
    }
    let day = digits(b, 8, 2)?;
    (1..=days_in_month(year, month))
        .contains(&day)
        .then_some(10)
}

/// hh:mm:ss with an optional fraction of 1 to 9 digits (second 60 is a
/// leap second): how many bytes it takes.
fn time_prefix(b: &[u8]) -> Option<usize> {
    let hour = digits(b, 0, 2)?;
    let minute = digits(b, 3, 2)?;
    let second = digits(b, 6, 2)?;
    if b[2] != b':' || b[5] != b':' || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    if b.get(8) != Some(&b'.') {
        return Some(8);
    }
    let fraction = b[9..].iter().take_while(|c| c.is_ascii_digit()).count();
    (1..=9).contains(&fraction).then_some(9 + fraction)
}

/// `Z` or ±hh:mm, from -14:00 to +14:00.
fn is_zone(b: &[u8]) -> bool {
    if b == b"Z" {
        return true;
    }
    let (Some(hours), Some(minutes)) = (digits(b, 1, 2), digits(b, 4, 2)) else {
        return false;
    };
    b.len() == 6
        && matches!(b[0], b'+' | b'-')
        && b[3] == b':'
        && ((hours < 14 && minutes < 60) || (hours == 14 && minutes == 0))
}

/// A full date, `T`, a time and a timezone, at the start of `b`.
fn is_full_date_time(b: &[u8]) -> bool {
    date_prefix(b) == Some(10)
        && b.get(10) == Some(&b'T')
        && time_prefix(&b[11..]).is_some_and(|n| is_zone(&b[11 + n..]))
}

fn is_date(s: &str) -> bool {
    date_prefix(s.as_bytes()) == Some(s.len())
}

/// dateTime: a date (year, month or day precision), or a full date and
/// time to the second with a timezone (FHIR requires the zone once there is
/// a time).
fn is_date_time(s: &str) -> bool {
    is_date(s) || is_full_date_time(s.as_bytes())
}

/// instant: a full date and time with a timezone.
fn is_instant(s: &str) -> bool {
    is_full_date_time(s.as_bytes())
}

fn is_time(s: &str) -> bool {
    time_prefix(s.as_bytes()) == Some(s.len())
}

// ---------------------------------------------------------------------------
// Element tables

/// An element of a resource, backbone element or datatype.
struct El {
    /// The JSON name; for a choice element, the name without `[x]`.
    name: &'static str,
    /// min 1.
    required: bool,
    /// max `*`: a JSON array.
    many: bool,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    One(Ty),
    /// `name[x]`: the JSON name suffixes allowed (`Quantity`, `DateTime`) and
    /// their types.
    Choice(&'static [(&'static str, Ty)]),
}

/// The elements of a complex type. A function, not a constant, so tables
/// can refer to each other in cycles (Identifier.assigner is a Reference,
/// Reference.identifier an Identifier; Consent provisions nest).
type Table = fn() -> &'static [El];

#[derive(Clone, Copy)]
enum Ty {
    Prim(Prim),
    /// A datatype checked against its table.
    Data(Table),
    /// A backbone element (or BackboneType) checked against its table.
    Backbone(Table),
    /// A datatype accepted as any non-empty object (see the module docs).
    Object,
    /// A resource held in `contained`.
    Resource,
}

impl Ty {
    fn is_primitive(self) -> bool {
        matches!(self, Ty::Prim(_))
    }
}

const fn opt(name: &'static str, ty: Ty) -> El {
    El {
        name,
        required: false,
        many: false,
        kind: Kind::One(ty),
    }
}

const fn req(name: &'static str, ty: Ty) -> El {
    El {
        name,
        required: true,
        many: false,
        kind: Kind::One(ty),
    }
}

const fn list(name: &'static str, ty: Ty) -> El {
    El {
        name,
        required: false,
        many: true,
        kind: Kind::One(ty),
    }
}

const fn req_list(name: &'static str, ty: Ty) -> El {
    El {
        name,
        required: true,
        many: true,
        kind: Kind::One(ty),
    }
}

const fn choice(name: &'static str, types: &'static [(&'static str, Ty)]) -> El {
    El {
        name,
        required: false,
        many: false,
        kind: Kind::Choice(types),
    }
}

const fn req_choice(name: &'static str, types: &'static [(&'static str, Ty)]) -> El {
    El {
        name,
        required: true,
        many: false,
        kind: Kind::Choice(types),
    }
}

/// Defines a table function holding a constant slice of elements.
macro_rules! table {
    ($name:ident: [$($el:expr),* $(,)?]) => {
        fn $name() -> &'static [El] {
            const ELEMENTS: &[El] = &[$($el),*];
            ELEMENTS
        }
    };
}

const BOOLEAN: Ty = Ty::Prim(Prim::Boolean);
const INTEGER: Ty = Ty::Prim(Prim::Integer);
const INTEGER64: Ty = Ty::Prim(Prim::Integer64);
const POSITIVE_INT: Ty = Ty::Prim(Prim::PositiveInt);
const UNSIGNED_INT: Ty = Ty::Prim(Prim::UnsignedInt);
const DECIMAL: Ty = Ty::Prim(Prim::Decimal);
const STRING: Ty = Ty::Prim(Prim::String);
const MARKDOWN: Ty = Ty::Prim(Prim::Markdown);
const CODE: Ty = Ty::Prim(Prim::Code);
const ID: Ty = Ty::Prim(Prim::Id);
const URI: Ty = Ty::Prim(Prim::Uri);
const URL: Ty = Ty::Prim(Prim::Url);
const CANONICAL: Ty = Ty::Prim(Prim::Canonical);
const OID: Ty = Ty::Prim(Prim::Oid);
const UUID: Ty = Ty::Prim(Prim::Uuid);
const BASE64_BINARY: Ty = Ty::Prim(Prim::Base64Binary);
const DATE: Ty = Ty::Prim(Prim::Date);
const DATE_TIME: Ty = Ty::Prim(Prim::DateTime);
const INSTANT: Ty = Ty::Prim(Prim::Instant);
const TIME: Ty = Ty::Prim(Prim::Time);
const XHTML: Ty = Ty::Prim(Prim::Xhtml);

const ELEMENT: Ty = Ty::Data(element);
const EXTENSION: Ty = Ty::Data(extension);
const IDENTIFIER: Ty = Ty::Data(identifier);
const HUMAN_NAME: Ty = Ty::Data(human_name);
const CONTACT_POINT: Ty = Ty::Data(contact_point);
const ADDRESS: Ty = Ty::Data(address);
const PERIOD: Ty = Ty::Data(period);
const CODING: Ty = Ty::Data(coding);
const CODEABLE_CONCEPT: Ty = Ty::Data(codeable_concept);
const CODEABLE_REFERENCE: Ty = Ty::Data(codeable_reference);
const REFERENCE: Ty = Ty::Data(reference);
const QUANTITY: Ty = Ty::Data(quantity);
/// SimpleQuantity: a Quantity without a comparator.
const SIMPLE_QUANTITY: Ty = Ty::Data(simple_quantity);
/// Age, Count, Distance and Duration are Quantities with constraints on
/// the unit, which are invariants and not checked here.
const AGE: Ty = QUANTITY;
const COUNT: Ty = QUANTITY;
const DISTANCE: Ty = QUANTITY;
const DURATION: Ty = QUANTITY;
const MONEY: Ty = Ty::Data(money);
const RANGE: Ty = Ty::Data(range);
const RATIO: Ty = Ty::Data(ratio);
const RATIO_RANGE: Ty = Ty::Data(ratio_range);
const ANNOTATION: Ty = Ty::Data(annotation);
const ATTACHMENT: Ty = Ty::Data(attachment);
const META: Ty = Ty::Data(meta);
const NARRATIVE: Ty = Ty::Data(narrative);
const SAMPLED_DATA: Ty = Ty::Data(sampled_data);
const SIGNATURE: Ty = Ty::Data(signature);
const EXPRESSION: Ty = Ty::Data(expression);
const CONTACT_DETAIL: Ty = Ty::Data(contact_detail);
const EXTENDED_CONTACT_DETAIL: Ty = Ty::Data(extended_contact_detail);
const TIMING: Ty = Ty::Backbone(timing);
const DOSAGE: Ty = Ty::Backbone(dosage);
const VIRTUAL_SERVICE_DETAIL: Ty = Ty::Object;
const RELATED_ARTIFACT: Ty = Ty::Object;
const RESOURCE: Ty = Ty::Resource;

// What every element, backbone element and resource has.

const DATA_BASE: &[El] = &[opt("id", STRING), list("extension", EXTENSION)];

const BACKBONE_BASE: &[El] = &[
    opt("id", STRING),
    list("extension", EXTENSION),
    list("modifierExtension", EXTENSION),
];

const RESOURCE_BASE: &[El] = &[
    opt("id", ID),
    opt("meta", META),
    opt("implicitRules", URI),
    opt("language", CODE),
    opt("text", NARRATIVE),
    list("contained", RESOURCE),
    list("extension", EXTENSION),
    list("modifierExtension", EXTENSION),
];

// Datatypes

/// Element: what `_name` siblings of primitives hold (id and extension only).
fn element() -> &'static [El] {
    &[]
}

/// Extension.value[x]: every type R5 allows ("*").
const ANY_VALUE: &[(&str, Ty)] = &[
    ("Base64Binary", BASE64_BINARY),
    ("Boolean", BOOLEAN),
    ("Canonical", CANONICAL),
    ("Code", CODE),
    ("Date", DATE),
    ("DateTime", DATE_TIME),
    ("Decimal", DECIMAL),
    ("Id", ID),
    ("Instant", INSTANT),
    ("Integer", INTEGER),
    ("Integer64", INTEGER64),
    ("Markdown", MARKDOWN),
    ("Oid", OID),
    ("PositiveInt", POSITIVE_INT),
    ("String", STRING),
    ("Time", TIME),
    ("UnsignedInt", UNSIGNED_INT),
    ("Uri", URI),
    ("Url", URL),
    ("Uuid", UUID),
    ("Address", ADDRESS),
    ("Age", AGE),
    ("Annotation", ANNOTATION),
    ("Attachment", ATTACHMENT),
    ("CodeableConcept", CODEABLE_CONCEPT),
    ("CodeableReference", CODEABLE_REFERENCE),
    ("Coding", CODING),
    ("ContactPoint", CONTACT_POINT),
    ("Count", COUNT),
    ("Distance", DISTANCE),
    ("Duration", DURATION),
    ("HumanName", HUMAN_NAME),
    ("Identifier", IDENTIFIER),
    ("Money", MONEY),
    ("Period", PERIOD),
    ("Quantity", QUANTITY),
    ("Range", RANGE),
    ("Ratio", RATIO),
    ("RatioRange", RATIO_RANGE),
    ("Reference", REFERENCE),
    ("SampledData", SAMPLED_DATA),
    ("Signature", SIGNATURE),
    ("Timing", TIMING),
    ("ContactDetail", CONTACT_DETAIL),
    ("DataRequirement", Ty::Object),
    ("Expression", EXPRESSION),
    ("ParameterDefinition", Ty::Object),
    ("RelatedArtifact", RELATED_ARTIFACT),
    ("TriggerDefinition", Ty::Object),
    ("UsageContext", Ty::Object),
    ("Availability", Ty::Object),
    ("ExtendedContactDetail", EXTENDED_CONTACT_DETAIL),
    ("Dosage", DOSAGE),
    ("Meta", META),
];

table!(extension: [req("url", URI), choice("value", ANY_VALUE)]);

table!(identifier: [
    opt("use", CODE),
    opt("type", CODEABLE_CONCEPT),
    opt("system", URI),
    opt("value", STRING),
    opt("period", PERIOD),
    opt("assigner", REFERENCE),
]);

table!(human_name: [
    opt("use", CODE),
    opt("text", STRING),
    opt("family", STRING),
    list("given", STRING),
    list("prefix", STRING),
    list("suffix", STRING),
    opt("period", PERIOD),
]);

table!(contact_point: [
    opt("system", CODE),
    opt("value", STRING),
    opt("use", CODE),
    opt("rank", POSITIVE_INT),
    opt("period", PERIOD),
]);

table!(address: [
    opt("use", CODE),
    opt("type", CODE),
    opt("text", STRING),
    list("line", STRING),
    opt("city", STRING),
    opt("district", STRING),
    opt("state", STRING),
    opt("postalCode", STRING),
    opt("country", STRING),
    opt("period", PERIOD),
]);

table!(period: [opt("start", DATE_TIME), opt("end", DATE_TIME)]);

table!(coding: [
    opt("system", URI),
    opt("version", STRING),
    opt("code", CODE),
    opt("display", STRING),
    opt("userSelected", BOOLEAN),
]);

table!(codeable_concept: [list("coding", CODING), opt("text", STRING)]);

table!(codeable_reference: [opt("concept", CODEABLE_CONCEPT), opt("reference", REFERENCE)]);

table!(reference: [
    opt("reference", STRING),
    opt("type", URI),
    opt("identifier", IDENTIFIER),
    opt("display", STRING),
]);

table!(quantity: [
    opt("value", DECIMAL),
    opt("comparator", CODE),
    opt("unit", STRING),
    opt("system", URI),
    opt("code", CODE),
]);

table!(simple_quantity: [
    opt("value", DECIMAL),
    opt("unit", STRING),
    opt("system", URI),
    opt("code", CODE),
]);

table!(money: [opt("value", DECIMAL), opt("currency", CODE)]);

table!(range: [opt("low", SIMPLE_QUANTITY), opt("high", SIMPLE_QUANTITY)]);

table!(ratio: [opt("numerator", QUANTITY), opt("denominator", SIMPLE_QUANTITY)]);

table!(ratio_range: [
    opt("lowNumerator", SIMPLE_QUANTITY),
    opt("highNumerator", SIMPLE_QUANTITY),
    opt("denominator", SIMPLE_QUANTITY),
]);

const ANNOTATION_AUTHOR: &[(&str, Ty)] = &[("Reference", REFERENCE), ("String", STRING)];

table!(annotation: [
    choice("author", ANNOTATION_AUTHOR),
    opt("time", DATE_TIME),
    req("text", MARKDOWN),
]);

table!(attachment: [
    opt("contentType", CODE),
    opt("language", CODE),
    opt("data", BASE64_BINARY),
    opt("url", URL),
    opt("size", INTEGER64),
    opt("hash", BASE64_BINARY),
    opt("title", STRING),
    opt("creation", DATE_TIME),
    opt("height", POSITIVE_INT),
    opt("width", POSITIVE_INT),
    opt("frames", POSITIVE_INT),
    opt("duration", DECIMAL),
    opt("pages", POSITIVE_INT),
]);

table!(meta: [
    opt("versionId", ID),
    opt("lastUpdated", INSTANT),
    opt("source", URI),
    list("profile", CANONICAL),
    list("security", CODING),
    list("tag", CODING),
]);

table!(narrative: [req("status", CODE), req("div", XHTML)]);

table!(sampled_data: [
    req("origin", SIMPLE_QUANTITY),
    opt("interval", DECIMAL),
    req("intervalUnit", CODE),
    opt("factor", DECIMAL),
    opt("lowerLimit", DECIMAL),
    opt("upperLimit", DECIMAL),
    req("dimensions", POSITIVE_INT),
    opt("codeMap", CANONICAL),
    opt("offsets", STRING),
    opt("data", STRING),
]);

table!(signature: [
    list("type", CODING),
    opt("when", INSTANT),
    opt("who", REFERENCE),
    opt("onBehalfOf", REFERENCE),
    opt("targetFormat", CODE),
    opt("sigFormat", CODE),
    opt("data", BASE64_BINARY),
]);

table!(expression: [
    opt("description", STRING),
    opt("name", CODE),
    opt("language", CODE),
    opt("expression", STRING),
    opt("reference", URI),
]);

table!(contact_detail: [opt("name", STRING), list("telecom", CONTACT_POINT)]);

table!(extended_contact_detail: [
    opt("purpose", CODEABLE_CONCEPT),
    list("name", HUMAN_NAME),
    list("telecom", CONTACT_POINT),
    opt("address", ADDRESS),
    opt("organization", REFERENCE),
    opt("period", PERIOD),
]);

table!(timing: [
    list("event", DATE_TIME),
    opt("repeat", Ty::Data(timing_repeat)),
    opt("code", CODEABLE_CONCEPT),
]);

const TIMING_BOUNDS: &[(&str, Ty)] =
    &[("Duration", DURATION), ("Range", RANGE), ("Period", PERIOD)];

table!(timing_repeat: [
    choice("bounds", TIMING_BOUNDS),
    opt("count", POSITIVE_INT),
    opt("countMax", POSITIVE_INT),
    opt("duration", DECIMAL),
    opt("durationMax", DECIMAL),
    opt("durationUnit", CODE),
    opt("frequency", POSITIVE_INT),
    opt("frequencyMax", POSITIVE_INT),
    opt("period", DECIMAL),
    opt("periodMax", DECIMAL),
    opt("periodUnit", CODE),
    list("dayOfWeek", CODE),
    list("timeOfDay", TIME),
    list("when", CODE),
    opt("offset", UNSIGNED_INT),
]);

table!(dosage: [
    opt("sequence", INTEGER),
    opt("text", STRING),
    list("additionalInstruction", CODEABLE_CONCEPT),
    opt("patientInstruction", STRING),
    opt("timing", TIMING),
    opt("asNeeded", BOOLEAN),
    list("asNeededFor", CODEABLE_CONCEPT),
    opt("site", CODEABLE_CONCEPT),
    opt("route", CODEABLE_CONCEPT),
    opt("method", CODEABLE_CONCEPT),
    list("doseAndRate", Ty::Data(dosage_dose_and_rate)),
    list("maxDosePerPeriod", RATIO),
    opt("maxDosePerAdministration", SIMPLE_QUANTITY),
    opt("maxDosePerLifetime", SIMPLE_QUANTITY),
]);

const DOSE: &[(&str, Ty)] = &[("Range", RANGE), ("Quantity", SIMPLE_QUANTITY)];
const RATE: &[(&str, Ty)] = &[
    ("Ratio", RATIO),
    ("Range", RANGE),
    ("Quantity", SIMPLE_QUANTITY),
];

table!(dosage_dose_and_rate: [
    opt("type", CODEABLE_CONCEPT),
    choice("dose", DOSE),
    choice("rate", RATE),
]);

// Backbone elements shared by several resources

// `function` and `actor` (Condition, AllergyIntolerance and Immunization
// participants/performers).
table!(function_actor: [opt("function", CODEABLE_CONCEPT), req("actor", REFERENCE)]);

// Practitioner.qualification, Organization.qualification.
table!(qualification: [
    list("identifier", IDENTIFIER),
    req("code", CODEABLE_CONCEPT),
    opt("period", PERIOD),
    opt("issuer", REFERENCE),
]);

// Patient.communication, Practitioner.communication.
table!(communication: [req("language", CODEABLE_CONCEPT), opt("preferred", BOOLEAN)]);

const DECEASED: &[(&str, Ty)] = &[("Boolean", BOOLEAN), ("DateTime", DATE_TIME)];

/// Condition.onset[x], abatement[x], AllergyIntolerance.onset[x].
const ONSET: &[(&str, Ty)] = &[
    ("DateTime", DATE_TIME),
    ("Age", AGE),
    ("Period", PERIOD),
    ("Range", RANGE),
    ("String", STRING),
];

const PERIOD_OR_DATE_TIME: &[(&str, Ty)] = &[("Period", PERIOD), ("DateTime", DATE_TIME)];

// Resources

fn table_of(resource_type: ResourceType) -> &'static [El] {
    match resource_type {
        ResourceType::Patient => patient(),
        ResourceType::Practitioner => practitioner(),
        ResourceType::Organization => organization(),
        ResourceType::Encounter => encounter(),
        ResourceType::Observation => observation(),
        ResourceType::Condition => condition(),
        ResourceType::AllergyIntolerance => allergy_intolerance(),
        ResourceType::MedicationRequest => medication_request(),
        ResourceType::Immunization => immunization(),
        ResourceType::Procedure => procedure(),
        ResourceType::DiagnosticReport => diagnostic_report(),
        ResourceType::DocumentReference => document_reference(),
        ResourceType::Device => device(),
        ResourceType::ResearchStudy => research_study(),
        ResourceType::ResearchSubject => research_subject(),
        ResourceType::Group => group(),
        ResourceType::Consent => consent(),
        ResourceType::Provenance => provenance(),
        ResourceType::AuditEvent => audit_event(),
    }
}

const MULTIPLE_BIRTH: &[(&str, Ty)] = &[("Boolean", BOOLEAN), ("Integer", INTEGER)];

table!(patient: [
    list("identifier", IDENTIFIER),
    opt("active", BOOLEAN),
    list("name", HUMAN_NAME),
    list("telecom", CONTACT_POINT),
    opt("gender", CODE),
    opt("birthDate", DATE),
    choice("deceased", DECEASED),
    list("address", ADDRESS),
    opt("maritalStatus", CODEABLE_CONCEPT),
    choice("multipleBirth", MULTIPLE_BIRTH),
    list("photo", ATTACHMENT),
    list("contact", Ty::Backbone(patient_contact)),
    list("communication", Ty::Backbone(communication)),
    list("generalPractitioner", REFERENCE),
    opt("managingOrganization", REFERENCE),
    list("link", Ty::Backbone(patient_link)),
]);

table!(patient_contact: [
    list("relationship", CODEABLE_CONCEPT),
    opt("name", HUMAN_NAME),
    list("telecom", CONTACT_POINT),
    opt("address", ADDRESS),
    opt("gender", CODE),
    opt("organization", REFERENCE),
    opt("period", PERIOD),
]);

table!(patient_link: [req("other", REFERENCE), req("type", CODE)]);

table!(practitioner: [
    list("identifier", IDENTIFIER),
    opt("active", BOOLEAN),
    list("name", HUMAN_NAME),
    list("telecom", CONTACT_POINT),
    opt("gender", CODE),
    opt("birthDate", DATE),
    choice("deceased", DECEASED),
    list("address", ADDRESS),
    list("photo", ATTACHMENT),
    list("qualification", Ty::Backbone(qualification)),
    list("communication", Ty::Backbone(communication)),
]);

table!(organization: [
    list("identifier", IDENTIFIER),
    opt("active", BOOLEAN),
    list("type", CODEABLE_CONCEPT),
    opt("name", STRING),
    list("alias", STRING),
    opt("description", MARKDOWN),
    list("contact", EXTENDED_CONTACT_DETAIL),
    opt("partOf", REFERENCE),
    list("endpoint", REFERENCE),
    list("qualification", Ty::Backbone(qualification)),
]);

table!(encounter: [
    list("identifier", IDENTIFIER),
    req("status", CODE),
    list("class", CODEABLE_CONCEPT),
    opt("priority", CODEABLE_CONCEPT),
    list("type", CODEABLE_CONCEPT),
    list("serviceType", CODEABLE_REFERENCE),
    opt("subject", REFERENCE),
    opt("subjectStatus", CODEABLE_CONCEPT),
    list("episodeOfCare", REFERENCE),
    list("basedOn", REFERENCE),
    list("careTeam", REFERENCE),
    opt("partOf", REFERENCE),
    opt("serviceProvider", REFERENCE),
    list("participant", Ty::Backbone(encounter_participant)),
    list("appointment", REFERENCE),
    list("virtualService", VIRTUAL_SERVICE_DETAIL),
    opt("actualPeriod", PERIOD),
    opt("plannedStartDate", DATE_TIME),
    opt("plannedEndDate", DATE_TIME),
    opt("length", DURATION),
    list("reason", Ty::Backbone(encounter_reason)),
    list("diagnosis", Ty::Backbone(encounter_diagnosis)),
    list("account", REFERENCE),
    list("dietPreference", CODEABLE_CONCEPT),
    list("specialArrangement", CODEABLE_CONCEPT),
    list("specialCourtesy", CODEABLE_CONCEPT),
    opt("admission", Ty::Backbone(encounter_admission)),
    list("location", Ty::Backbone(encounter_location)),
]);

table!(encounter_participant: [
    list("type", CODEABLE_CONCEPT),
    opt("period", PERIOD),
    opt("actor", REFERENCE),
]);

table!(encounter_reason: [list("use", CODEABLE_CONCEPT), list("value", CODEABLE_REFERENCE)]);

table!(encounter_diagnosis: [
    list("condition", CODEABLE_REFERENCE),
    list("use", CODEABLE_CONCEPT),
]);

table!(encounter_admission: [
    opt("preAdmissionIdentifier", IDENTIFIER),
    opt("origin", REFERENCE),
    opt("admitSource", CODEABLE_CONCEPT),
    opt("reAdmission", CODEABLE_CONCEPT),
    opt("destination", REFERENCE),
    opt("dischargeDisposition", CODEABLE_CONCEPT),
]);

table!(encounter_location: [
    req("location", REFERENCE),
    opt("status", CODE),
    opt("form", CODEABLE_CONCEPT),
    opt("period", PERIOD),
]);

const OBSERVATION_INSTANTIATES: &[(&str, Ty)] =
    &[("Canonical", CANONICAL), ("Reference", REFERENCE)];

const OBSERVATION_EFFECTIVE: &[(&str, Ty)] = &[
    ("DateTime", DATE_TIME),
    ("Period", PERIOD),
    ("Timing", TIMING),
    ("Instant", INSTANT),
];

const OBSERVATION_VALUE: &[(&str, Ty)] = &[
    ("Quantity", QUANTITY),
    ("CodeableConcept", CODEABLE_CONCEPT),
    ("String", STRING),
    ("Boolean", BOOLEAN),
    ("Integer", INTEGER),
    ("Range", RANGE),
    ("Ratio", RATIO),
    ("SampledData", SAMPLED_DATA),
    ("Time", TIME),
    ("DateTime", DATE_TIME),
    ("Period", PERIOD),
    ("Attachment", ATTACHMENT),
    ("Reference", REFERENCE),
];

table!(observation: [
    list("identifier", IDENTIFIER),
    choice("instantiates", OBSERVATION_INSTANTIATES),
    list("basedOn", REFERENCE),
    list("triggeredBy", Ty::Backbone(observation_triggered_by)),
    list("partOf", REFERENCE),
    req("status", CODE),
    list("category", CODEABLE_CONCEPT),
    req("code", CODEABLE_CONCEPT),
    opt("subject", REFERENCE),
    list("focus", REFERENCE),
    opt("encounter", REFERENCE),
    choice("effective", OBSERVATION_EFFECTIVE),
    opt("issued", INSTANT),
    list("performer", REFERENCE),
    choice("value", OBSERVATION_VALUE),
    opt("dataAbsentReason", CODEABLE_CONCEPT),
    list("interpretation", CODEABLE_CONCEPT),
    list("note", ANNOTATION),
    opt("bodySite", CODEABLE_CONCEPT),
    opt("bodyStructure", REFERENCE),
    opt("method", CODEABLE_CONCEPT),
    opt("specimen", REFERENCE),
    opt("device", REFERENCE),
    list("referenceRange", Ty::Backbone(observation_reference_range)),
    list("hasMember", REFERENCE),
    list("derivedFrom", REFERENCE),
    list("component", Ty::Backbone(observation_component)),
]);

table!(observation_triggered_by: [
    req("observation", REFERENCE),
    req("type", CODE),
    opt("reason", STRING),
]);

table!(observation_reference_range: [
    opt("low", SIMPLE_QUANTITY),
    opt("high", SIMPLE_QUANTITY),
    opt("normalValue", CODEABLE_CONCEPT),
    opt("type", CODEABLE_CONCEPT),
    list("appliesTo", CODEABLE_CONCEPT),
    opt("age", RANGE),
    opt("text", MARKDOWN),
]);

table!(observation_component: [
    req("code", CODEABLE_CONCEPT),
    choice("value", OBSERVATION_VALUE),
    opt("dataAbsentReason", CODEABLE_CONCEPT),
    list("interpretation", CODEABLE_CONCEPT),
    list("referenceRange", Ty::Backbone(observation_reference_range)),
]);

table!(condition: [
    list("identifier", IDENTIFIER),
    req("clinicalStatus", CODEABLE_CONCEPT),
    opt("verificationStatus", CODEABLE_CONCEPT),
    list("category", CODEABLE_CONCEPT),
    opt("severity", CODEABLE_CONCEPT),
    opt("code", CODEABLE_CONCEPT),
    list("bodySite", CODEABLE_CONCEPT),
    req("subject", REFERENCE),
    opt("encounter", REFERENCE),
    choice("onset", ONSET),
    choice("abatement", ONSET),
    opt("recordedDate", DATE_TIME),
    list("participant", Ty::Backbone(function_actor)),
    list("stage", Ty::Backbone(condition_stage)),
    list("evidence", CODEABLE_REFERENCE),
    list("note", ANNOTATION),
]);

table!(condition_stage: [
    opt("summary", CODEABLE_CONCEPT),
    list("assessment", REFERENCE),
    opt("type", CODEABLE_CONCEPT),
]);

table!(allergy_intolerance: [
    list("identifier", IDENTIFIER),
    opt("clinicalStatus", CODEABLE_CONCEPT),
    opt("verificationStatus", CODEABLE_CONCEPT),
    opt("type", CODEABLE_CONCEPT),
    list("category", CODE),
    opt("criticality", CODE),
    opt("code", CODEABLE_CONCEPT),
    req("patient", REFERENCE),
    opt("encounter", REFERENCE),
    choice("onset", ONSET),
    opt("recordedDate", DATE_TIME),
    list("participant", Ty::Backbone(function_actor)),
    opt("lastOccurrence", DATE_TIME),
    list("note", ANNOTATION),
    list("reaction", Ty::Backbone(allergy_reaction)),
]);

table!(allergy_reaction: [
    opt("substance", CODEABLE_CONCEPT),
    req_list("manifestation", CODEABLE_REFERENCE),
    opt("description", STRING),
    opt("onset", DATE_TIME),
    opt("severity", CODE),
    opt("exposureRoute", CODEABLE_CONCEPT),
    list("note", ANNOTATION),
]);

table!(medication_request: [
    list("identifier", IDENTIFIER),
    list("basedOn", REFERENCE),
    opt("priorPrescription", REFERENCE),
    opt("groupIdentifier", IDENTIFIER),
    req("status", CODE),
    opt("statusReason", CODEABLE_CONCEPT),
    opt("statusChanged", DATE_TIME),
    req("intent", CODE),
    list("category", CODEABLE_CONCEPT),
    opt("priority", CODE),
    opt("doNotPerform", BOOLEAN),
    req("medication", CODEABLE_REFERENCE),
    req("subject", REFERENCE),
    list("informationSource", REFERENCE),
    opt("encounter", REFERENCE),
    list("supportingInformation", REFERENCE),
    opt("authoredOn", DATE_TIME),
    opt("requester", REFERENCE),
    opt("reported", BOOLEAN),
    opt("performerType", CODEABLE_CONCEPT),
    list("performer", REFERENCE),
    list("device", CODEABLE_REFERENCE),
    opt("recorder", REFERENCE),
    list("reason", CODEABLE_REFERENCE),
    opt("courseOfTherapyType", CODEABLE_CONCEPT),
    list("insurance", REFERENCE),
    list("note", ANNOTATION),
    opt("renderedDosageInstruction", MARKDOWN),
    opt("effectiveDosePeriod", PERIOD),
    list("dosageInstruction", DOSAGE),
    opt("dispenseRequest", Ty::Backbone(medication_request_dispense)),
    opt("substitution", Ty::Backbone(medication_request_substitution)),
    list("eventHistory", REFERENCE),
]);

table!(medication_request_dispense: [
    opt("initialFill", Ty::Backbone(medication_request_initial_fill)),
    opt("dispenseInterval", DURATION),
    opt("validityPeriod", PERIOD),
    opt("numberOfRepeatsAllowed", UNSIGNED_INT),
    opt("quantity", SIMPLE_QUANTITY),
    opt("expectedSupplyDuration", DURATION),
    opt("dispenser", REFERENCE),
    list("dispenserInstruction", ANNOTATION),
    opt("doseAdministrationAid", CODEABLE_CONCEPT),
]);

table!(medication_request_initial_fill: [
    opt("quantity", SIMPLE_QUANTITY),
    opt("duration", DURATION),
]);

const SUBSTITUTION_ALLOWED: &[(&str, Ty)] =
    &[("Boolean", BOOLEAN), ("CodeableConcept", CODEABLE_CONCEPT)];

table!(medication_request_substitution: [
    req_choice("allowed", SUBSTITUTION_ALLOWED),
    opt("reason", CODEABLE_CONCEPT),
]);

const IMMUNIZATION_OCCURRENCE: &[(&str, Ty)] = &[("DateTime", DATE_TIME), ("String", STRING)];

table!(immunization: [
    list("identifier", IDENTIFIER),
    list("basedOn", REFERENCE),
    req("status", CODE),
    opt("statusReason", CODEABLE_CONCEPT),
    req("vaccineCode", CODEABLE_CONCEPT),
    opt("administeredProduct", CODEABLE_REFERENCE),
    opt("manufacturer", CODEABLE_REFERENCE),
    opt("lotNumber", STRING),
    opt("expirationDate", DATE),
    req("patient", REFERENCE),
    opt("encounter", REFERENCE),
    list("supportingInformation", REFERENCE),
    req_choice("occurrence", IMMUNIZATION_OCCURRENCE),
    opt("primarySource", BOOLEAN),
    opt("informationSource", CODEABLE_REFERENCE),
    opt("location", REFERENCE),
    opt("site", CODEABLE_CONCEPT),
    opt("route", CODEABLE_CONCEPT),
    opt("doseQuantity", SIMPLE_QUANTITY),
    list("performer", Ty::Backbone(function_actor)),
    list("note", ANNOTATION),
    list("reason", CODEABLE_REFERENCE),
    opt("isSubpotent", BOOLEAN),
    list("subpotentReason", CODEABLE_CONCEPT),
    list("programEligibility", Ty::Backbone(immunization_program_eligibility)),
    opt("fundingSource", CODEABLE_CONCEPT),
    list("reaction", Ty::Backbone(immunization_reaction)),
    list("protocolApplied", Ty::Backbone(immunization_protocol_applied)),
]);

table!(immunization_program_eligibility: [
    req("program", CODEABLE_CONCEPT),
    req("programStatus", CODEABLE_CONCEPT),
]);

table!(immunization_reaction: [
    opt("date", DATE_TIME),
    opt("manifestation", CODEABLE_REFERENCE),
    opt("reported", BOOLEAN),
]);

table!(immunization_protocol_applied: [
    opt("series", STRING),
    opt("authority", REFERENCE),
    list("targetDisease", CODEABLE_CONCEPT),
    req("doseNumber", STRING),
    opt("seriesDoses", STRING),
]);

const PROCEDURE_OCCURRENCE: &[(&str, Ty)] = &[
    ("DateTime", DATE_TIME),
    ("Period", PERIOD),
    ("String", STRING),
    ("Age", AGE),
    ("Range", RANGE),
    ("Timing", TIMING),
];

const PROCEDURE_REPORTED: &[(&str, Ty)] = &[("Boolean", BOOLEAN), ("Reference", REFERENCE)];

table!(procedure: [
    list("identifier", IDENTIFIER),
    list("instantiatesCanonical", CANONICAL),
    list("instantiatesUri", URI),
    list("basedOn", REFERENCE),
    list("partOf", REFERENCE),
    req("status", CODE),
    opt("statusReason", CODEABLE_CONCEPT),
    list("category", CODEABLE_CONCEPT),
    opt("code", CODEABLE_CONCEPT),
    req("subject", REFERENCE),
    opt("focus", REFERENCE),
    opt("encounter", REFERENCE),
    choice("occurrence", PROCEDURE_OCCURRENCE),
    opt("recorded", DATE_TIME),
    opt("recorder", REFERENCE),
    choice("reported", PROCEDURE_REPORTED),
    list("performer", Ty::Backbone(procedure_performer)),
    opt("location", REFERENCE),
    list("reason", CODEABLE_REFERENCE),
    list("bodySite", CODEABLE_CONCEPT),
    opt("outcome", CODEABLE_CONCEPT),
    list("report", REFERENCE),
    list("complication", CODEABLE_REFERENCE),
    list("followUp", CODEABLE_CONCEPT),
    list("note", ANNOTATION),
    list("focalDevice", Ty::Backbone(procedure_focal_device)),
    list("used", CODEABLE_REFERENCE),
    list("supportingInfo", REFERENCE),
]);

table!(procedure_performer: [
    opt("function", CODEABLE_CONCEPT),
    req("actor", REFERENCE),
    opt("onBehalfOf", REFERENCE),
    opt("period", PERIOD),
]);

table!(procedure_focal_device: [
    opt("action", CODEABLE_CONCEPT),
    req("manipulated", REFERENCE),
]);

table!(diagnostic_report: [
    list("identifier", IDENTIFIER),
    list("basedOn", REFERENCE),
    req("status", CODE),
    list("category", CODEABLE_CONCEPT),
    req("code", CODEABLE_CONCEPT),
    opt("subject", REFERENCE),
    opt("encounter", REFERENCE),
    choice("effective", PERIOD_OR_DATE_TIME),
    opt("issued", INSTANT),
    list("performer", REFERENCE),
    list("resultsInterpreter", REFERENCE),
    list("specimen", REFERENCE),
    list("result", REFERENCE),
    list("note", ANNOTATION),
    list("study", REFERENCE),
    list("supportingInfo", Ty::Backbone(diagnostic_report_supporting_info)),
    list("media", Ty::Backbone(diagnostic_report_media)),
    opt("composition", REFERENCE),
    opt("conclusion", MARKDOWN),
    list("conclusionCode", CODEABLE_CONCEPT),
    list("presentedForm", ATTACHMENT),
]);

table!(diagnostic_report_supporting_info: [
    req("type", CODEABLE_CONCEPT),
    req("reference", REFERENCE),
]);

table!(diagnostic_report_media: [opt("comment", STRING), req("link", REFERENCE)]);

table!(document_reference: [
    list("identifier", IDENTIFIER),
    opt("version", STRING),
    list("basedOn", REFERENCE),
    req("status", CODE),
    opt("docStatus", CODE),
    list("modality", CODEABLE_CONCEPT),
    opt("type", CODEABLE_CONCEPT),
    list("category", CODEABLE_CONCEPT),
    opt("subject", REFERENCE),
    list("context", REFERENCE),
    list("event", CODEABLE_REFERENCE),
    list("bodySite", CODEABLE_REFERENCE),
    opt("facilityType", CODEABLE_CONCEPT),
    opt("practiceSetting", CODEABLE_CONCEPT),
    opt("period", PERIOD),
    opt("date", INSTANT),
    list("author", REFERENCE),
    list("attester", Ty::Backbone(document_reference_attester)),
    opt("custodian", REFERENCE),
    list("relatesTo", Ty::Backbone(document_reference_relates_to)),
    opt("description", MARKDOWN),
    list("securityLabel", CODEABLE_CONCEPT),
    req_list("content", Ty::Backbone(document_reference_content)),
]);

table!(document_reference_attester: [
    req("mode", CODEABLE_CONCEPT),
    opt("time", DATE_TIME),
    opt("party", REFERENCE),
]);

table!(document_reference_relates_to: [
    req("code", CODEABLE_CONCEPT),
    req("target", REFERENCE),
]);

table!(document_reference_content: [
    req("attachment", ATTACHMENT),
    list("profile", Ty::Backbone(document_reference_profile)),
]);

const DOCUMENT_PROFILE: &[(&str, Ty)] =
    &[("Coding", CODING), ("Uri", URI), ("Canonical", CANONICAL)];

table!(document_reference_profile: [req_choice("value", DOCUMENT_PROFILE)]);

table!(device: [
    list("identifier", IDENTIFIER),
    opt("displayName", STRING),
    opt("definition", CODEABLE_REFERENCE),
    list("udiCarrier", Ty::Backbone(device_udi_carrier)),
    opt("status", CODE),
    opt("availabilityStatus", CODEABLE_CONCEPT),
    opt("biologicalSourceEvent", IDENTIFIER),
    opt("manufacturer", STRING),
    opt("manufactureDate", DATE_TIME),
    opt("expirationDate", DATE_TIME),
    opt("lotNumber", STRING),
    opt("serialNumber", STRING),
    list("name", Ty::Backbone(device_name)),
    opt("modelNumber", STRING),
    opt("partNumber", STRING),
    list("category", CODEABLE_CONCEPT),
    list("type", CODEABLE_CONCEPT),
    list("version", Ty::Backbone(device_version)),
    list("conformsTo", Ty::Backbone(device_conforms_to)),
    list("property", Ty::Backbone(device_property)),
    opt("mode", CODEABLE_CONCEPT),
    opt("cycle", COUNT),
    opt("duration", DURATION),
    opt("owner", REFERENCE),
    list("contact", CONTACT_POINT),
    opt("location", REFERENCE),
    opt("url", URI),
    list("endpoint", REFERENCE),
    list("gateway", CODEABLE_REFERENCE),
    list("note", ANNOTATION),
    list("safety", CODEABLE_CONCEPT),
    opt("parent", REFERENCE),
]);

table!(device_udi_carrier: [
    req("deviceIdentifier", STRING),
    req("issuer", URI),
    opt("jurisdiction", URI),
    opt("carrierAIDC", BASE64_BINARY),
    opt("carrierHRF", STRING),
    opt("entryType", CODE),
]);

table!(device_name: [req("value", STRING), req("type", CODE), opt("display", BOOLEAN)]);

table!(device_version: [
    opt("type", CODEABLE_CONCEPT),
    opt("component", IDENTIFIER),
    opt("installDate", DATE_TIME),
    req("value", STRING),
]);

table!(device_conforms_to: [
    opt("category", CODEABLE_CONCEPT),
    req("specification", CODEABLE_CONCEPT),
    opt("version", STRING),
]);

const DEVICE_PROPERTY_VALUE: &[(&str, Ty)] = &[
    ("Quantity", QUANTITY),
    ("CodeableConcept", CODEABLE_CONCEPT),
    ("String", STRING),
    ("Boolean", BOOLEAN),
    ("Integer", INTEGER),
    ("Range", RANGE),
    ("Attachment", ATTACHMENT),
];

table!(device_property: [
    req("type", CODEABLE_CONCEPT),
    req_choice("value", DEVICE_PROPERTY_VALUE),
]);

table!(research_study: [
    opt("url", URI),
    list("identifier", IDENTIFIER),
    opt("version", STRING),
    opt("name", STRING),
    opt("title", STRING),
    list("label", Ty::Backbone(research_study_label)),
    list("protocol", REFERENCE),
    list("partOf", REFERENCE),
    list("relatedArtifact", RELATED_ARTIFACT),
    opt("date", DATE_TIME),
    req("status", CODE),
    opt("primaryPurposeType", CODEABLE_CONCEPT),
    opt("phase", CODEABLE_CONCEPT),
    list("studyDesign", CODEABLE_CONCEPT),
    list("focus", CODEABLE_REFERENCE),
    list("condition", CODEABLE_CONCEPT),
    list("keyword", CODEABLE_CONCEPT),
    list("region", CODEABLE_CONCEPT),
    opt("descriptionSummary", MARKDOWN),
    opt("description", MARKDOWN),
    opt("period", PERIOD),
    list("site", REFERENCE),
    list("note", ANNOTATION),
    list("classifier", CODEABLE_CONCEPT),
    list("associatedParty", Ty::Backbone(research_study_associated_party)),
    list("progressStatus", Ty::Backbone(research_study_progress_status)),
    opt("whyStopped", CODEABLE_CONCEPT),
    opt("recruitment", Ty::Backbone(research_study_recruitment)),
    list("comparisonGroup", Ty::Backbone(research_study_comparison_group)),
    list("objective", Ty::Backbone(research_study_objective)),
    list("outcomeMeasure", Ty::Backbone(research_study_outcome_measure)),
    list("result", REFERENCE),
]);

table!(research_study_label: [opt("type", CODEABLE_CONCEPT), opt("value", STRING)]);

table!(research_study_associated_party: [
    opt("name", STRING),
    req("role", CODEABLE_CONCEPT),
    list("period", PERIOD),
    list("classifier", CODEABLE_CONCEPT),
    opt("party", REFERENCE),
]);

table!(research_study_progress_status: [
    req("state", CODEABLE_CONCEPT),
    opt("actual", BOOLEAN),
    opt("period", PERIOD),
]);

table!(research_study_recruitment: [
    opt("targetNumber", UNSIGNED_INT),
    opt("actualNumber", UNSIGNED_INT),
    opt("eligibility", REFERENCE),
    opt("actualGroup", REFERENCE),
]);

table!(research_study_comparison_group: [
    opt("linkId", ID),
    req("name", STRING),
    opt("type", CODEABLE_CONCEPT),
    opt("description", MARKDOWN),
    list("intendedExposure", REFERENCE),
    opt("observedGroup", REFERENCE),
]);

table!(research_study_objective: [
    opt("name", STRING),
    opt("type", CODEABLE_CONCEPT),
    opt("description", MARKDOWN),
]);

table!(research_study_outcome_measure: [
    opt("name", STRING),
    list("type", CODEABLE_CONCEPT),
    opt("description", MARKDOWN),
    opt("reference", REFERENCE),
]);

table!(research_subject: [
    list("identifier", IDENTIFIER),
    req("status", CODE),
    list("progress", Ty::Backbone(research_subject_progress)),
    opt("period", PERIOD),
    req("study", REFERENCE),
    req("subject", REFERENCE),
    opt("assignedComparisonGroup", ID),
    opt("actualComparisonGroup", ID),
    list("consent", REFERENCE),
]);

table!(research_subject_progress: [
    opt("type", CODEABLE_CONCEPT),
    opt("subjectState", CODEABLE_CONCEPT),
    opt("milestone", CODEABLE_CONCEPT),
    opt("reason", CODEABLE_CONCEPT),
    opt("startDate", DATE_TIME),
    opt("endDate", DATE_TIME),
]);

table!(group: [
    list("identifier", IDENTIFIER),
    opt("active", BOOLEAN),
    req("type", CODE),
    req("membership", CODE),
    opt("code", CODEABLE_CONCEPT),
    opt("name", STRING),
    opt("description", MARKDOWN),
    opt("quantity", UNSIGNED_INT),
    opt("managingEntity", REFERENCE),
    list("characteristic", Ty::Backbone(group_characteristic)),
    list("member", Ty::Backbone(group_member)),
]);

const GROUP_CHARACTERISTIC_VALUE: &[(&str, Ty)] = &[
    ("CodeableConcept", CODEABLE_CONCEPT),
    ("Boolean", BOOLEAN),
    ("Quantity", QUANTITY),
    ("Range", RANGE),
    ("Reference", REFERENCE),
];

table!(group_characteristic: [
    req("code", CODEABLE_CONCEPT),
    req_choice("value", GROUP_CHARACTERISTIC_VALUE),
    req("exclude", BOOLEAN),
    opt("period", PERIOD),
]);

table!(group_member: [
    req("entity", REFERENCE),
    opt("period", PERIOD),
    opt("inactive", BOOLEAN),
]);

table!(consent: [
    list("identifier", IDENTIFIER),
    req("status", CODE),
    list("category", CODEABLE_CONCEPT),
    opt("subject", REFERENCE),
    opt("date", DATE),
    opt("period", PERIOD),
    list("grantor", REFERENCE),
    list("grantee", REFERENCE),
    list("manager", REFERENCE),
    list("controller", REFERENCE),
    list("sourceAttachment", ATTACHMENT),
    list("sourceReference", REFERENCE),
    list("regulatoryBasis", CODEABLE_CONCEPT),
    opt("policyBasis", Ty::Backbone(consent_policy_basis)),
    list("policyText", REFERENCE),
    list("verification", Ty::Backbone(consent_verification)),
    opt("decision", CODE),
    list("provision", Ty::Backbone(consent_provision)),
]);

table!(consent_policy_basis: [opt("reference", REFERENCE), opt("url", URL)]);

table!(consent_verification: [
    req("verified", BOOLEAN),
    opt("verificationType", CODEABLE_CONCEPT),
    opt("verifiedBy", REFERENCE),
    opt("verifiedWith", REFERENCE),
    list("verificationDate", DATE_TIME),
]);

table!(consent_provision: [
    opt("period", PERIOD),
    list("actor", Ty::Backbone(consent_provision_actor)),
    list("action", CODEABLE_CONCEPT),
    list("securityLabel", CODING),
    list("purpose", CODING),
    list("documentType", CODING),
    list("resourceType", CODING),
    list("code", CODEABLE_CONCEPT),
    opt("dataPeriod", PERIOD),
    list("data", Ty::Backbone(consent_provision_data)),
    opt("expression", EXPRESSION),
    list("provision", Ty::Backbone(consent_provision)),
]);

table!(consent_provision_actor: [opt("role", CODEABLE_CONCEPT), opt("reference", REFERENCE)]);

table!(consent_provision_data: [req("meaning", CODE), req("reference", REFERENCE)]);

table!(provenance: [
    req_list("target", REFERENCE),
    choice("occurred", PERIOD_OR_DATE_TIME),
    opt("recorded", INSTANT),
    list("policy", URI),
    opt("location", REFERENCE),
    list("authorization", CODEABLE_REFERENCE),
    opt("activity", CODEABLE_CONCEPT),
    list("basedOn", REFERENCE),
    opt("patient", REFERENCE),
    opt("encounter", REFERENCE),
    req_list("agent", Ty::Backbone(provenance_agent)),
    list("entity", Ty::Backbone(provenance_entity)),
    list("signature", SIGNATURE),
]);

table!(provenance_agent: [
    opt("type", CODEABLE_CONCEPT),
    list("role", CODEABLE_CONCEPT),
    req("who", REFERENCE),
    opt("onBehalfOf", REFERENCE),
]);

table!(provenance_entity: [
    req("role", CODE),
    req("what", REFERENCE),
    list("agent", Ty::Backbone(provenance_agent)),
]);

table!(audit_event: [
    list("category", CODEABLE_CONCEPT),
    req("code", CODEABLE_CONCEPT),
    opt("action", CODE),
    opt("severity", CODE),
    choice("occurred", PERIOD_OR_DATE_TIME),
    req("recorded", INSTANT),
    opt("outcome", Ty::Backbone(audit_event_outcome)),
    list("authorization", CODEABLE_CONCEPT),
    list("basedOn", REFERENCE),
    opt("patient", REFERENCE),
    opt("encounter", REFERENCE),
    req_list("agent", Ty::Backbone(audit_event_agent)),
    req("source", Ty::Backbone(audit_event_source)),
    list("entity", Ty::Backbone(audit_event_entity)),
]);

table!(audit_event_outcome: [req("code", CODING), list("detail", CODEABLE_CONCEPT)]);

const AUDIT_EVENT_NETWORK: &[(&str, Ty)] =
    &[("Reference", REFERENCE), ("Uri", URI), ("String", STRING)];

table!(audit_event_agent: [
    opt("type", CODEABLE_CONCEPT),
    list("role", CODEABLE_CONCEPT),
    req("who", REFERENCE),
    opt("requestor", BOOLEAN),
    opt("location", REFERENCE),
    list("policy", URI),
    choice("network", AUDIT_EVENT_NETWORK),
    list("authorization", CODEABLE_CONCEPT),
]);

table!(audit_event_source: [
    opt("site", REFERENCE),
    req("observer", REFERENCE),
    list("type", CODEABLE_CONCEPT),
]);

table!(audit_event_entity: [
    opt("what", REFERENCE),
    opt("role", CODEABLE_CONCEPT),
    list("securityLabel", CODEABLE_CONCEPT),
    opt("query", BASE64_BINARY),
    list("detail", Ty::Backbone(audit_event_entity_detail)),
    list("agent", Ty::Backbone(audit_event_agent)),
]);

const AUDIT_EVENT_DETAIL_VALUE: &[(&str, Ty)] = &[
    ("Quantity", QUANTITY),
    ("CodeableConcept", CODEABLE_CONCEPT),
    ("String", STRING),
    ("Boolean", BOOLEAN),
    ("Integer", INTEGER),
    ("Range", RANGE),
    ("Ratio", RATIO),
    ("Time", TIME),
    ("DateTime", DATE_TIME),
    ("Period", PERIOD),
    ("Base64Binary", BASE64_BINARY),
];

table!(audit_event_entity_detail: [
    req("type", CODEABLE_CONCEPT),
    req_choice("value", AUDIT_EVENT_DETAIL_VALUE),
]);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The smallest valid resource of each type: its type and required elements.
    fn minimal(resource_type: ResourceType) -> Value {
        let cc = json!({"text": "x"});
        let reference = json!({"reference": "Patient/p1"});
        let mut v = match resource_type {
            ResourceType::Patient
            | ResourceType::Practitioner
            | ResourceType::Organization
            | ResourceType::Device => json!({}),
            ResourceType::Encounter => json!({"status": "planned"}),
            ResourceType::Observation => json!({"status": "final", "code": cc}),
            ResourceType::Condition => json!({"clinicalStatus": cc, "subject": reference}),
            ResourceType::AllergyIntolerance => json!({"patient": reference}),
            ResourceType::MedicationRequest => json!({
                "status": "active", "intent": "order",
                "medication": {"concept": cc}, "subject": reference,
            }),
            ResourceType::Immunization => json!({
                "status": "completed", "vaccineCode": cc, "patient": reference,
                "occurrenceDateTime": "2024-05-01",
            }),
            ResourceType::Procedure => json!({"status": "completed", "subject": reference}),
            ResourceType::DiagnosticReport => json!({"status": "final", "code": cc}),
            ResourceType::DocumentReference => json!({
                "status": "current", "content": [{"attachment": {"url": "http://x/doc"}}],
            }),
            ResourceType::ResearchStudy => json!({"status": "active"}),
            ResourceType::ResearchSubject => json!({
                "status": "active", "study": {"reference": "ResearchStudy/s"}, "subject": reference,
            }),
            ResourceType::Group => json!({"type": "person", "membership": "definitional"}),
            ResourceType::Consent => json!({"status": "active"}),
            ResourceType::Provenance => {
                json!({"target": [reference], "agent": [{"who": reference}]})
            }
            ResourceType::AuditEvent => json!({
                "code": cc, "recorded": "2024-05-01T10:00:00Z",
                "agent": [{"who": reference}], "source": {"observer": reference},
            }),
        };
        v["resourceType"] = json!(resource_type.as_str());
        v
    }

    fn issues(v: &Value) -> Vec<Issue> {
        validate(v, None).expect_err("should be refused")
    }

    /// The one issue at `expression`, with its code.
    fn issue_at(v: &Value, expression: &str) -> Issue {
        let all = issues(v);
        let mut at = all
            .iter()
            .filter(|i| i.expression.as_deref() == Some(expression));
        let found = at.next().cloned();
        found.unwrap_or_else(|| panic!("no issue at {expression}: {all:#?}"))
    }

    #[test]
    fn minimal_resources_of_every_type_are_valid() {
        for t in ResourceType::ALL {
            assert_eq!(validate(&minimal(t), Some(t)), Ok(t), "{t}");
        }
    }

    #[test]
    fn each_required_element_is_named_when_missing() {
        for t in ResourceType::ALL {
            let full = minimal(t);
            for key in full
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "resourceType")
            {
                let mut v = full.clone();
                v.as_object_mut().unwrap().remove(key);
                let name = key.strip_suffix("DateTime").unwrap_or(key);
                let issue = issue_at(&v, &format!("{t}.{name}"));
                assert_eq!(issue.code, "required", "{t}.{key}");
            }
        }
    }

    #[test]
    fn nested_required_elements() {
        let mut v = minimal(ResourceType::AuditEvent);
        v["agent"][0] = json!({"requestor": true});
        v["source"] = json!({"type": [{"text": "x"}]});
        assert_eq!(issue_at(&v, "AuditEvent.agent[0].who").code, "required");
        assert_eq!(issue_at(&v, "AuditEvent.source.observer").code, "required");

        let mut v = minimal(ResourceType::Provenance);
        v["agent"] = json!([{"role": [{"text": "author"}]}]);
        assert_eq!(issue_at(&v, "Provenance.agent[0].who").code, "required");

        let mut v = minimal(ResourceType::Observation);
        v["component"] = json!([{"valueString": "x"}]);
        assert_eq!(
            issue_at(&v, "Observation.component[0].code").code,
            "required"
        );

        let mut v = minimal(ResourceType::Patient);
        v["extension"] = json!([{"valueString": "x"}]);
        assert_eq!(issue_at(&v, "Patient.extension[0].url").code, "required");
    }

    #[test]
    fn control_characters_are_refused_in_strings() {
        for bad in [
            "a\u{0}b",
            "\u{1}",
            "x\u{1b}[31m",
            "\u{7}bell",
            "line\u{c}feed",
        ] {
            let mut v = minimal(ResourceType::Patient);
            v["name"] = json!([{"family": bad}]);
            let issue = issue_at(&v, "Patient.name[0].family");
            assert_eq!(issue.code, "value", "{bad:?}");
            assert!(issue.diagnostics.contains("control character"), "{bad:?}");
            let mut v = minimal(ResourceType::Observation);
            v["status"] = json!(format!("final{bad}"));
            assert!(validate(&v, None).is_err(), "{bad:?} in a code");
        }
        // Tab, carriage return and line feed are allowed.
        let mut v = minimal(ResourceType::Patient);
        v["name"] = json!([{"family": "a\tb", "text": "line one\r\nline two"}]);
        assert!(validate(&v, None).is_ok());
    }

    #[test]
    fn a_required_primitive_may_be_only_an_extension() {
        let mut v = minimal(ResourceType::Observation);
        v.as_object_mut().unwrap().remove("status");
        v["_status"] = json!({"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]});
        assert!(validate(&v, None).is_ok());
    }

    #[test]
    fn array_where_a_single_value_belongs() {
        let mut v = minimal(ResourceType::Observation);
        v["status"] = json!(["final"]);
        assert_eq!(issue_at(&v, "Observation.status").code, "structure");
        let mut v = minimal(ResourceType::Observation);
        v["code"] = json!([{"text": "x"}]);
        assert_eq!(issue_at(&v, "Observation.code").code, "structure");
    }

    #[test]
    fn single_value_where_an_array_belongs() {
        let mut v = minimal(ResourceType::Observation);
        v["category"] = json!({"text": "vital-signs"});
        assert_eq!(issue_at(&v, "Observation.category").code, "structure");
        let mut v = minimal(ResourceType::Patient);
        v["name"] = json!([{"given": "Peter"}]);
        assert_eq!(issue_at(&v, "Patient.name[0].given").code, "structure");
    }

    #[test]
    fn empty_arrays_objects_and_strings_are_refused() {
        let mut v = minimal(ResourceType::Patient);
        v["name"] = json!([]);
        v["maritalStatus"] = json!({});
        v["gender"] = json!("");
        assert_eq!(issue_at(&v, "Patient.name").code, "structure");
        assert_eq!(issue_at(&v, "Patient.maritalStatus").code, "structure");
        assert_eq!(issue_at(&v, "Patient.gender").code, "value");
    }

    #[test]
    fn bad_date() {
        let mut v = minimal(ResourceType::Patient);
        v["birthDate"] = json!("2023-13-01");
        assert_eq!(issue_at(&v, "Patient.birthDate").code, "value");
        v["birthDate"] = json!("2023-02-29");
        assert_eq!(issue_at(&v, "Patient.birthDate").code, "value");
        v["birthDate"] = json!("2024-02-29");
        assert!(validate(&v, None).is_ok());
    }

    #[test]
    fn date_time_with_a_time_needs_a_timezone() {
        let mut v = minimal(ResourceType::Observation);
        v["effectiveDateTime"] = json!("2023-05-01T10:00:00");
        let issue = issue_at(&v, "Observation.effective.ofType(dateTime)");
        assert_eq!(issue.code, "value");
        v["effectiveDateTime"] = json!("2023-05-01T10:00:00+02:00");
        assert!(validate(&v, None).is_ok());
    }

    #[test]
    fn boolean_as_string() {
        let mut v = minimal(ResourceType::Patient);
        v["active"] = json!("true");
        let issue = issue_at(&v, "Patient.active");
        assert_eq!(issue.code, "structure");
        assert!(
            issue.diagnostics.contains("boolean"),
            "{}",
            issue.diagnostics
        );
    }

    #[test]
    fn bad_ids() {
        let mut v = minimal(ResourceType::Patient);
        v["id"] = json!("no spaces allowed");
        assert_eq!(issue_at(&v, "Patient.id").code, "value");
        v["id"] = json!("x".repeat(65));
        assert_eq!(issue_at(&v, "Patient.id").code, "value");
        v["id"] = json!(12);
        assert_eq!(issue_at(&v, "Patient.id").code, "structure");
    }

    #[test]
    fn bad_primitives_inside_datatypes_name_the_indexed_path() {
        let mut v = minimal(ResourceType::Observation);
        v["code"] = json!({"coding": [{"system": "http://loinc.org", "code": "1-8"}, {"system": "not a uri", "code": " padded"}]});
        assert_eq!(
            issue_at(&v, "Observation.code.coding[1].system").code,
            "value"
        );
        assert_eq!(
            issue_at(&v, "Observation.code.coding[1].code").code,
            "value"
        );
        assert_eq!(issues(&v).len(), 2);
    }

    #[test]
    fn numbers() {
        let mut v = minimal(ResourceType::Patient);
        v["telecom"] = json!([{"rank": 0}, {"rank": 1.5}, {"rank": 3}]);
        v["multipleBirthInteger"] = json!("2");
        assert_eq!(issue_at(&v, "Patient.telecom[0].rank").code, "value");
        assert_eq!(issue_at(&v, "Patient.telecom[1].rank").code, "value");
        assert_eq!(
            issue_at(&v, "Patient.multipleBirth.ofType(integer)").code,
            "structure"
        );
        assert_eq!(issues(&v).len(), 3);
        let mut v = minimal(ResourceType::Observation);
        v["valueQuantity"] = json!({"value": "185"});
        assert_eq!(
            issue_at(&v, "Observation.value.ofType(Quantity).value").code,
            "structure"
        );
    }

    #[test]
    fn unknown_elements_are_named() {
        let mut v = minimal(ResourceType::Patient);
        v["favouriteColour"] = json!("blue");
        v["name"] = json!([{"family": "Chalmers", "nickname": "Jim"}]);
        let issue = issue_at(&v, "Patient.favouriteColour");
        assert_eq!(issue.code, "structure");
        assert!(issue.diagnostics.contains("unknown element"));
        assert_eq!(issue_at(&v, "Patient.name[0].nickname").code, "structure");
        // modifierExtension belongs to backbone elements, not datatypes.
        let mut v = minimal(ResourceType::Patient);
        v["name"] = json!([{"family": "X", "modifierExtension": [{"url": "http://x", "valueBoolean": true}]}]);
        assert_eq!(
            issue_at(&v, "Patient.name[0].modifierExtension").code,
            "structure"
        );
        v["name"] = json!([{"family": "X"}]);
        v["contact"] = json!([{"gender": "male", "modifierExtension": [{"url": "http://x", "valueBoolean": true}]}]);
        assert!(validate(&v, None).is_ok());
    }

    #[test]
    fn choice_elements() {
        let mut v = minimal(ResourceType::Patient);
        v["deceasedBoolean"] = json!(false);
        v["deceasedDateTime"] = json!("2020-01-01");
        assert_eq!(issue_at(&v, "Patient.deceased").code, "structure");

        let mut v = minimal(ResourceType::Observation);
        v["valueMoney"] = json!({"value": 1});
        let issue = issue_at(&v, "Observation.valueMoney");
        assert_eq!(issue.code, "structure");
        assert!(issue.diagnostics.contains("value[x]"));

        let mut v = minimal(ResourceType::Immunization);
        v.as_object_mut().unwrap().remove("occurrenceDateTime");
        v["occurrenceString"] = json!("last spring");
        assert!(validate(&v, None).is_ok());
    }

    #[test]
    fn resource_type_checks() {
        let v = minimal(ResourceType::Patient);
        let issue = validate(&v, Some(ResourceType::Observation)).unwrap_err();
        assert_eq!(issue.len(), 1);
        assert_eq!(issue[0].code, "invalid");
        assert_eq!(issue[0].expression.as_deref(), Some("resourceType"));

        let bundle = json!({"resourceType": "Bundle", "type": "searchset"});
        assert_eq!(issue_at(&bundle, "resourceType").code, "not-supported");
        let junk = json!({"resourceType": "patient"});
        assert_eq!(issue_at(&junk, "resourceType").code, "invalid");
        let missing = json!({"id": "x"});
        assert_eq!(issue_at(&missing, "resourceType").code, "required");
        let number = json!({"resourceType": 5});
        assert_eq!(issue_at(&number, "resourceType").code, "structure");
    }

    #[test]
    fn non_objects_are_refused() {
        for v in [
            json!([]),
            json!("Patient"),
            json!(null),
            json!(1),
            json!([{"resourceType": "Patient"}]),
        ] {
            let all = issues(&v);
            assert_eq!(all.len(), 1);
            assert_eq!(all[0].code, "structure");
        }
    }

    #[test]
    fn primitive_extension_siblings() {
        let ext = json!({"extension": [{"url": "http://x", "valueString": "y"}]});
        let mut v = minimal(ResourceType::Patient);
        v["birthDate"] = json!("1974-12-25");
        v["_birthDate"] = ext.clone();
        v["name"] = json!([{"given": ["Peter", null], "_given": [null, ext.clone()]}]);
        assert!(validate(&v, None).is_ok());

        v["_birthDate"] = json!("1974");
        assert_eq!(issue_at(&v, "Patient.birthDate").code, "structure");
        v["_birthDate"] = json!({"extension": [{"valueString": "y"}]});
        assert_eq!(
            issue_at(&v, "Patient.birthDate.extension[0].url").code,
            "required"
        );
        v["_birthDate"] = ext.clone();

        // A null item needs an extension in its place.
        v["name"] = json!([{"given": ["Peter", null]}]);
        assert_eq!(issue_at(&v, "Patient.name[0].given[1]").code, "structure");
        // Complex elements have no _ sibling.
        v["name"] = json!([{"given": ["Peter"]}]);
        v["_managingOrganization"] = ext;
        assert_eq!(
            issue_at(&v, "Patient.managingOrganization").code,
            "structure"
        );
    }

    #[test]
    fn contained_resources() {
        let mut v = minimal(ResourceType::MedicationRequest);
        v["contained"] =
            json!([{"resourceType": "Medication", "id": "med1", "code": {"text": "aspirin"}}]);
        v["medication"] = json!({"reference": {"reference": "#med1"}});
        assert!(validate(&v, None).is_ok());

        v["contained"] = json!([
            {"resourceType": "Patient", "id": "p", "shoeSize": 9},
            {"resourceType": "Medication", "id": "bad id"},
            {"resourceType": "Medication", "contained": [{"resourceType": "Medication"}]},
            {"id": "x"},
        ]);
        assert_eq!(
            issue_at(&v, "MedicationRequest.contained[0].shoeSize").code,
            "structure"
        );
        assert_eq!(
            issue_at(&v, "MedicationRequest.contained[1].id").code,
            "value"
        );
        assert_eq!(
            issue_at(&v, "MedicationRequest.contained[2].contained").code,
            "structure"
        );
        assert_eq!(
            issue_at(&v, "MedicationRequest.contained[3]").code,
            "required"
        );
    }

    #[test]
    fn recursive_consent_provisions() {
        let mut v = minimal(ResourceType::Consent);
        v["provision"] = json!([{"provision": [{"provision": [{"purpose": [{"code": "ETREAT"}], "data": [{"meaning": "related"}]}]}]}]);
        let issue = issue_at(
            &v,
            "Consent.provision[0].provision[0].provision[0].data[0].reference",
        );
        assert_eq!(issue.code, "required");
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        // Extensions nested deeper than serde_json would parse (a Value
        // built in code has no limit; much deeper and dropping the Value
        // itself would overflow a test thread's stack).
        let mut ext = json!({"url": "http://x", "valueString": "leaf"});
        for _ in 0..300 {
            ext = json!({"url": "http://x", "extension": [ext]});
        }
        let mut v = minimal(ResourceType::Patient);
        v["extension"] = json!([ext]);
        let all = issues(&v);
        assert!(all
            .iter()
            .any(|i| i.diagnostics.contains("nested too deeply")));
        assert!(all.len() <= MAX_ISSUES + 1);
    }

    #[test]
    fn issues_are_capped() {
        let mut v = minimal(ResourceType::Patient);
        for i in 0..500 {
            v[format!("unknown{i}")] = json!(i);
        }
        let all = issues(&v);
        assert_eq!(all.len(), MAX_ISSUES + 1);
        assert_eq!(all[MAX_ISSUES].code, "too-costly");
    }

    #[test]
    fn narrative() {
        let mut v = minimal(ResourceType::Patient);
        v["text"] = json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"});
        assert!(validate(&v, None).is_ok());
        v["text"] = json!({"status": "generated", "div": "plain text"});
        assert_eq!(issue_at(&v, "Patient.text.div").code, "value");
        v["text"] = json!({"div": "<div>x</div>"});
        assert_eq!(issue_at(&v, "Patient.text.status").code, "required");
    }

    #[test]
    fn meta() {
        let mut v = minimal(ResourceType::Patient);
        v["meta"] = json!({"versionId": "3", "lastUpdated": "2024-05-01T10:00:00.123Z", "profile": ["http://hl7.org/fhir/StructureDefinition/Patient"], "security": [{"code": "R"}], "tag": [{"code": "HTEST"}], "source": "urn:uuid:0c6a4d3e-3b7a-4d9e-9a39-0f0e4a0b9c11"});
        assert!(validate(&v, None).is_ok());
        v["meta"] = json!({"lastUpdated": "2024-05-01"});
        assert_eq!(issue_at(&v, "Patient.meta.lastUpdated").code, "value");
    }

    #[test]
    fn dates_and_times() {
        for ok in ["2024", "2024-02", "2024-02-29", "0001-01-01"] {
            assert!(is_date(ok) && is_date_time(ok), "{ok}");
        }
        for bad in [
            "0000",
            "24",
            "2024-2",
            "2024-00",
            "2023-02-29",
            "2024-04-31",
            "2024-01-01T",
            "2024/01/01",
            "2024-01-01 ",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
        for ok in [
            "2024-05-01T10:00:00Z",
            "2024-05-01T23:59:60+14:00",
            "2024-05-01T00:00:00.123456789-05:30",
        ] {
            assert!(is_date_time(ok) && is_instant(ok), "{ok}");
        }
        for bad in [
            "2024-05-01T10:00:00",
            "2024-05-01T10:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T10:00:00.Z",
            "2024-05-01T10:00:00.1234567890Z",
            "2024-05-01T10:00:00+14:30",
            "2024-05-01T10:00:00+0200",
            "2024-05T10:00:00Z",
        ] {
            assert!(!is_date_time(bad), "{bad}");
        }
        assert!(!is_instant("2024-05-01"));
        assert!(is_time("09:00:00") && is_time("23:59:59.5"));
        assert!(!is_time("9:00:00") && !is_time("09:00") && !is_time("09:00:00Z"));
    }

    #[test]
    fn other_string_primitives() {
        assert!(is_code("vital-signs") && is_code("a b"));
        assert!(!is_code(" a") && !is_code("a ") && !is_code("a  b") && !is_code("a\tb"));
        assert!(is_oid("urn:oid:1.2.36.146.595.217.0.1"));
        assert!(
            !is_oid("urn:oid:3.1")
                && !is_oid("urn:oid:1")
                && !is_oid("urn:oid:1.02")
                && !is_oid("1.2")
        );
        assert!(is_uuid("urn:uuid:0c6a4d3e-3b7a-4d9e-9a39-0f0e4a0b9c11"));
        assert!(!is_uuid("urn:uuid:0C6A4D3E-3B7A-4D9E-9A39-0F0E4A0B9C11"));
        assert!(is_base64("aGVsbG8=") && is_base64("aGVs bG8h"));
        assert!(!is_base64("aGVsbG8") && !is_base64("a===") && !is_base64("aG=sbG8="));
        assert!(is_integer64("0") && is_integer64("-9223372036854775808") && is_integer64("+12"));
        assert!(!is_integer64("01") && !is_integer64("9223372036854775808") && !is_integer64("-"));
    }

    /// Any JSON value, up to a few levels deep.
    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[a-zA-Z0-9 :.+-]{0,12}".prop_map(Value::from),
            prop::sample::select(vec![
                "Patient",
                "Observation",
                "Bundle",
                "2024-01-01",
                "final",
                "_x"
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            let names = prop::sample::select(vec![
                "resourceType",
                "id",
                "status",
                "code",
                "coding",
                "system",
                "value",
                "valueString",
                "valueQuantity",
                "_status",
                "extension",
                "url",
                "contained",
                "subject",
                "reference",
                "text",
                "div",
                "name",
                "given",
                "_given",
                "provision",
                "agent",
                "who",
                "meta",
                "tag",
            ]);
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map(names, inner, 0..6).prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        #[test]
        fn never_panics(v in any_json(), t in prop::sample::select(ResourceType::ALL.to_vec())) {
            let _ = validate(&v, None);
            let mut resource = v.clone();
            if let Some(obj) = resource.as_object_mut() {
                obj.insert("resourceType".into(), json!(t.as_str()));
            }
            if let Err(all) = validate(&resource, Some(t)) {
                prop_assert!(!all.is_empty() && all.len() <= MAX_ISSUES + 1);
            }
        }
    }
}
