//! Simulated Salesforce: `Booking__c` and `Opportunity` records written
//! through the REST sObject API, with their change history.
//!
//! What it reproduces (see `SERVICES.md`), because sagas break on it:
//! - upsert by external id (`PATCH /sobjects/{object}/ExternalId__c/{value}`):
//!   201 created, 200 updated, 300 when several records match — the
//!   idempotent way to write;
//! - plain create (`POST /sobjects/{object}`) is *not* idempotent: a retried
//!   create makes a duplicate record;
//! - two concurrent first upserts of one external id race: both find no
//!   match when they start, and at commit the second gets `DUPLICATE_VALUE`
//!   (or, when the external id field is not unique, a second record);
//! - `If-Unmodified-Since` → 412 when the record changed after the given
//!   time. The header is an HTTP-date, so the comparison has *one-second*
//!   resolution: a change in the same second as the given time goes unseen,
//!   as in the real API;
//! - transient `UNABLE_TO_LOCK_ROW`, 403 `REQUEST_LIMIT_EXCEEDED` (rolling
//!   24 h API limit), 503, and 500 after the write landed;
//! - **row locks**: a write holds its record's lock while it is in flight;
//!   a second write of the same record that is still waiting when its own
//!   service time is over fails with `UNABLE_TO_LOCK_ROW`, nothing applied
//!   (Salesforce waits up to 10 s for a lock — "Record Locking" in the
//!   Apex/SOAP docs; the model waits only as long as the waiter's own
//!   service time, never longer: harsher, not kinder);
//! - **validation rules** declared by the scenario
//!   ([`SalesforceConfig::validation_rules`]): a save whose resulting record
//!   matches a rule is refused, definitively, with 400
//!   `FIELD_CUSTOM_VALIDATION_EXCEPTION` (Salesforce Help, "Validation
//!   Rules"; the same code a trigger's `addError` gives), nothing applied;
//! - **delete and undelete**: `DELETE /sobjects/{object}/{id}` moves the
//!   record to the Recycle Bin; a deleted record answers 404
//!   `ENTITY_IS_DELETED` to get, update and delete, is no longer matched by
//!   upsert or query by external id (so an upsert creates a new record),
//!   and no longer holds its unique external id; undelete restores it, or
//!   fails with `DUPLICATE_VALUE` when another record took the id
//!   meanwhile (REST API Developer Guide, "Delete a Record"; SOAP API,
//!   `undelete()`); an admin (or a data-cleanup job) deletes a record
//!   from Setup or the UI too ([`Salesforce::delete_by_admin`], an
//!   environment event), which the ground truth lists apart
//!   (`admin_deletions`);
//! - required fields on insert (`Opportunity`: Name, StageName, CloseDate),
//!   read-only system fields, malformed ids, unknown objects;
//! - **sessions**: every data request carries the OAuth access token
//!   (session id) it was issued under ([`SalesforceCall::Api`]); a client
//!   gets one from the token endpoint ([`SalesforceCall::Login`]). A session
//!   ends after [`SalesforceConfig::session_timeout_ms`] without a request
//!   (the org's Session Settings "Timeout value", default two hours) or
//!   when an admin revokes it ([`Salesforce::revoke_sessions`]); a request
//!   under an ended, unknown or missing session answers 401
//!   `INVALID_SESSION_ID` "Session expired or invalid" and applies nothing
//!   (SOAP API Developer Guide, "Error Handling for Session Expiration":
//!   "you must invoke the login() call again"). Sessions are the org's
//!   state, so they survive a crash of the service node; a client's copy
//!   of its token is its own business (the reference coordinator keeps it
//!   in memory and logs in again after a restart).
//!
//! Deliberately not here: SOQL beyond lookup by external id, composite
//! requests, field-level schemas beyond required fields (any well-formed
//! field name is accepted), validation-rule formulas beyond "field equals
//! one of these values", per-user limits, latency (the transport's job),
//! refresh tokens and per-profile session timeouts, the login rate limit,
//! and the UI's "extend only in the second half of the timeout" rule (the
//! API docs say an API call resets the inactivity timer).

// A refused request's answer *is* the error: built once per request and
// handed straight back to the caller, so boxing it buys nothing.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Begin, InFlight, Injected, ServiceModel, Ticket};

/// The external id field of both objects.
pub const EXTERNAL_ID_FIELD: &str = "ExternalId__c";
/// Longest external id (a Text(255) field).
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;
/// Longest field API name accepted.
pub const MAX_FIELD_NAME_CHARS: usize = 80;
/// Most fields in one write.
pub const MAX_FIELDS_PER_WRITE: usize = 500;
/// Longest text value (Long Text Area maximum).
pub const MAX_TEXT_CHARS: usize = 131_072;
/// Fields the API never lets a client write.
pub const READ_ONLY_FIELDS: [&str; 6] = [
    "Id",
    "CreatedDate",
    "LastModifiedDate",
    "SystemModstamp",
    "CreatedById",
    "LastModifiedById",
];

const DAY_MS: u64 = 24 * 3_600_000;
const MINUTE_MS: u64 = 60_000;

/// The org's session timeout when the scenario sets none: two hours
/// (SOAP API Developer Guide, "Error Handling for Session Expiration":
/// "Sessions expire automatically after a predetermined length of
/// inactivity ... The default is 120 minutes (two hours). If you make an
/// API call, the inactivity timer is reset to zero").
pub const DEFAULT_SESSION_TIMEOUT_MS: u64 = 120 * MINUTE_MS;

/// The timeout values Setup → Session Settings offers, in minutes: 15
/// minutes to 24 hours (Metadata API Developer Guide,
/// `ProfileSessionSetting.sessionTimeout`: "Valid values: 15, 30, 60, 120,
/// 240, 480, 720, 1440").
pub const SESSION_TIMEOUT_CHOICES_MIN: [u64; 8] = [15, 30, 60, 120, 240, 480, 720, 1440];

/// An sObject type the org has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectType {
    /// API name.
    pub name: String,
    /// Key prefix of its record ids.
    pub key_prefix: String,
    /// Fields an insert must set (non-null).
    pub required_on_insert: Vec<&'static str>,
}

/// The standard objects every simulated org has: (API name, key prefix,
/// fields required on insert), as Salesforce documents them.
pub const STANDARD_OBJECTS: [(&str, &str, &[&str]); 3] = [
    ("Account", "001", &["Name"]),
    ("Contact", "003", &["LastName"]),
    ("Opportunity", "006", &["Name", "StageName", "CloseDate"]),
];

/// Whether `name` is a well-formed field API name: at most
/// [`MAX_FIELD_NAME_CHARS`] characters from `[A-Za-z0-9_]`, starting with a
/// letter (what a request may write and a validation rule may read).
pub fn valid_field_name(name: &str) -> bool {
    name.chars().count() <= MAX_FIELD_NAME_CHARS
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Most custom objects an org may declare.
pub const MAX_CUSTOM_OBJECTS: usize = 20;
/// Most validation rules a scenario may declare (Salesforce allows 500
/// active rules per object; a scenario needs a few).
pub const MAX_VALIDATION_RULES: usize = 100;
/// Most values one rule may reject.
pub const MAX_REJECTED_VALUES: usize = 100;
/// Longest validation-rule error message (Salesforce: 255 characters).
pub const MAX_RULE_MESSAGE_CHARS: usize = 255;

/// A validation rule of the org, in the one shape the model evaluates: the
/// save is refused when the record, as it would be after the save, has
/// `field` equal to one of `rejects` (a JSON number compares by its text:
/// `"3"` rejects `3`). Declared in the scenario, for inputs that a real
/// org's rules or triggers refuse (a customer on a do-not-book list, a
/// booking over a credit limit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidationRule {
    /// The sObject it guards.
    pub object: String,
    /// The field it reads.
    pub field: String,
    /// The values it refuses.
    pub rejects: Vec<String>,
    /// The error message (`message` of the error array).
    #[serde(default = "default_rule_message")]
    pub message: String,
}

fn default_rule_message() -> String {
    "The record does not pass the org's validation rules.".to_string()
}

impl ValidationRule {
    /// Whether a record of `object` with these `fields` breaks the rule.
    pub fn rejects_record(&self, object: &str, fields: &BTreeMap<String, Value>) -> bool {
        if object != self.object {
            return false;
        }
        let text = match fields.get(&self.field) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::Bool(b)) => b.to_string(),
            _ => return false,
        };
        self.rejects.contains(&text)
    }
}

/// Whether `name` is a custom object API name (`Name__c`, 3 to 43
/// characters from `[A-Za-z0-9_]`, starting with a letter).
pub fn valid_custom_object(name: &str) -> bool {
    name.len() <= 43
        && name.ends_with("__c")
        && name.len() > 3
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The org's objects: the standard ones, then `custom` with key prefixes
/// `a0B`, `a0C`, … in order.
fn org_objects(custom: &[String]) -> Vec<ObjectType> {
    let mut v: Vec<ObjectType> = STANDARD_OBJECTS
        .iter()
        .map(|(name, prefix, required)| ObjectType {
            name: name.to_string(),
            key_prefix: prefix.to_string(),
            required_on_insert: required.to_vec(),
        })
        .collect();
    for (i, name) in custom.iter().enumerate().take(MAX_CUSTOM_OBJECTS) {
        let letter = char::from(b'B' + u8::try_from(i).expect("at most 20"));
        v.push(ObjectType {
            name: name.clone(),
            key_prefix: format!("a0{letter}"),
            required_on_insert: Vec::new(),
        });
    }
    v
}

/// Scenario knobs for the simulated org.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SalesforceConfig {
    /// API requests allowed per rolling 24 h of service time; `None` =
    /// unlimited. Over it: 403 `REQUEST_LIMIT_EXCEEDED`.
    pub daily_api_limit: Option<u32>,
    /// Whether `ExternalId__c` is marked *Unique* (then a racing second
    /// insert fails with `DUPLICATE_VALUE`; otherwise it makes a duplicate).
    pub external_id_unique: bool,
    /// Custom objects of the org (`Name__c`), besides the standard
    /// [`STANDARD_OBJECTS`]. The world adds every custom object a
    /// workload's steps write.
    pub custom_objects: Vec<String>,
    /// The org's validation rules (none by default: an org has the rules
    /// its admins wrote; a scenario declares the ones its inputs meet).
    pub validation_rules: Vec<ValidationRule>,
    /// Session Settings "Timeout value": a session ends after this long
    /// without a request, in ms; one of [`SESSION_TIMEOUT_CHOICES_MIN`]
    /// (15 minutes to 24 hours). Default [`DEFAULT_SESSION_TIMEOUT_MS`],
    /// two hours.
    pub session_timeout_ms: u64,
    /// Whether users or automation of the org other than the integration
    /// delete records of the objects it writes (an admin, a data-cleanup
    /// flow; Salesforce grants Delete through profiles and permission
    /// sets, and "Modify All Data" always includes it). The org then no
    /// longer deduplicates a late copy by external id: the record it would
    /// match may be in the Recycle Bin, which an upsert does not match, so
    /// the copy creates a new record. A coordinator must sweep its CRM
    /// writes (the reference does). `faults.crm_deletions` may draw such
    /// deletions only where this is declared. Default `false`.
    pub others_delete_records: bool,
}

impl SalesforceConfig {
    /// Limits on what a scenario may declare.
    pub fn validate(&self) -> Result<(), String> {
        let timeout_ok = SESSION_TIMEOUT_CHOICES_MIN
            .iter()
            .any(|m| m * MINUTE_MS == self.session_timeout_ms);
        if !timeout_ok {
            let choices: Vec<String> = SESSION_TIMEOUT_CHOICES_MIN
                .iter()
                .map(|m| (m * MINUTE_MS).to_string())
                .collect();
            return Err(format!(
                "salesforce.session_timeout_ms = {} is not a timeout Salesforce offers \
                 (one of {} ms: 15 minutes to 24 hours)",
                self.session_timeout_ms,
                choices.join(", ")
            ));
        }
        if self.validation_rules.len() > MAX_VALIDATION_RULES {
            return Err(format!(
                "salesforce.validation_rules: at most {MAX_VALIDATION_RULES} rules"
            ));
        }
        for (i, r) in self.validation_rules.iter().enumerate() {
            let at = format!("salesforce.validation_rules[{i}]");
            let object_ok = valid_custom_object(&r.object)
                || STANDARD_OBJECTS.iter().any(|(name, ..)| *name == r.object);
            if !object_ok {
                return Err(format!("{at}.object `{}` is not an sObject name", r.object));
            }
            if !valid_field_name(&r.field) {
                return Err(format!("{at}.field `{}` is not a field name", r.field));
            }
            if r.rejects.is_empty() || r.rejects.len() > MAX_REJECTED_VALUES {
                return Err(format!(
                    "{at}.rejects must list 1..={MAX_REJECTED_VALUES} values"
                ));
            }
            if r.message.chars().count() > MAX_RULE_MESSAGE_CHARS {
                return Err(format!(
                    "{at}.message is longer than {MAX_RULE_MESSAGE_CHARS} characters"
                ));
            }
        }
        Ok(())
    }
}

impl Default for SalesforceConfig {
    fn default() -> Self {
        SalesforceConfig {
            daily_api_limit: None,
            external_id_unique: true,
            custom_objects: Vec::new(),
            validation_rules: Vec::new(),
            session_timeout_ms: DEFAULT_SESSION_TIMEOUT_MS,
            others_delete_records: false,
        }
    }
}

/// What a client sends to the org: a token request, or an API request under
/// a session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SalesforceCall {
    /// `POST /services/oauth2/token` (the OAuth 2.0 token request of an
    /// integration user): a new session, answered 200 with
    /// [`SalesforceBody::Token`]. Answered at once; the token endpoint has
    /// no row to lock, so an injected throttle does not apply, and an
    /// injected server error issues no token (or, after the write,
    /// issues one the client never hears of).
    Login,
    /// A REST API request with `Authorization: Bearer {session}`.
    Api {
        /// The access token a [`SalesforceCall::Login`] returned.
        session: String,
        /// The request.
        request: SalesforceRequest,
    },
}

impl SalesforceCall {
    /// The call's kind, as the coverage catalogue names it: `login`, or
    /// the API request's [`SalesforceRequest::kind`].
    pub fn kind(&self) -> &'static str {
        match self {
            SalesforceCall::Login => "login",
            SalesforceCall::Api { request, .. } => request.kind(),
        }
    }

    /// `request` under `session`.
    pub fn api(session: &str, request: SalesforceRequest) -> Self {
        SalesforceCall::Api {
            session: session.to_owned(),
            request,
        }
    }
}

/// A request to the simulated REST API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SalesforceRequest {
    /// `PATCH /sobjects/{object}/ExternalId__c/{external_id}`.
    Upsert {
        /// sObject API name.
        object: String,
        /// External id value (1..=255 characters).
        external_id: String,
        /// Field values; `null` clears a field.
        fields: BTreeMap<String, Value>,
        /// `If-Unmodified-Since` (applies when an existing record is updated).
        if_unmodified_since_ms: Option<u64>,
    },
    /// `POST /sobjects/{object}` — not idempotent.
    Create {
        /// sObject API name.
        object: String,
        /// Field values (may include `ExternalId__c`).
        fields: BTreeMap<String, Value>,
    },
    /// `PATCH /sobjects/{object}/{id}`.
    Update {
        /// sObject API name.
        object: String,
        /// Record id (15 or 18 characters).
        id: String,
        /// Field values; `null` clears a field.
        fields: BTreeMap<String, Value>,
        /// `If-Unmodified-Since`: 412 if the record changed after it.
        if_unmodified_since_ms: Option<u64>,
    },
    /// `GET /sobjects/{object}/{id}`.
    Get {
        /// sObject API name.
        object: String,
        /// Record id.
        id: String,
    },
    /// `SELECT … FROM {object} WHERE ExternalId__c = '{external_id}'`
    /// (deleted records excluded, as `query` does; `queryAll` is not
    /// modelled).
    QueryByExternalId {
        /// sObject API name.
        object: String,
        /// External id value.
        external_id: String,
    },
    /// `DELETE /sobjects/{object}/{id}`: to the Recycle Bin.
    Delete {
        /// sObject API name.
        object: String,
        /// Record id.
        id: String,
    },
    /// Undelete (SOAP `undelete()`): back from the Recycle Bin.
    Undelete {
        /// sObject API name.
        object: String,
        /// Record id.
        id: String,
    },
}

impl SalesforceRequest {
    fn object(&self) -> &str {
        match self {
            SalesforceRequest::Upsert { object, .. }
            | SalesforceRequest::Create { object, .. }
            | SalesforceRequest::Update { object, .. }
            | SalesforceRequest::Get { object, .. }
            | SalesforceRequest::QueryByExternalId { object, .. }
            | SalesforceRequest::Delete { object, .. }
            | SalesforceRequest::Undelete { object, .. } => object,
        }
    }
}

/// `errorCode` values the model produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SalesforceErrorCode {
    /// 400: a unique field already has this value (the upsert race).
    DuplicateValue,
    /// 404: the record is in the Recycle Bin (get, update, delete).
    EntityIsDeleted,
    /// 400: a validation rule or trigger refused the save; definitive.
    FieldCustomValidationException,
    /// 400: bad field name or value.
    InvalidField,
    /// 401: the session (access token) expired, was revoked or is unknown;
    /// nothing applied. Log in again and retry.
    InvalidSessionId,
    /// 400: a read-only field was written.
    InvalidFieldForInsertUpdate,
    /// 400: the id is not a well-formed record id.
    MalformedId,
    /// 404: unknown object or record.
    NotFound,
    /// 412: `If-Unmodified-Since` not satisfied.
    PreconditionFailed,
    /// 403: daily API limit reached; retry much later.
    RequestLimitExceeded,
    /// 400: an insert lacks a required field (or an update clears one).
    RequiredFieldMissing,
    /// 503: server unavailable; nothing applied.
    ServerUnavailable,
    /// 400: a value is too long.
    StringTooLong,
    /// 400: lock contention; transient, nothing applied.
    UnableToLockRow,
    /// 400: undelete of a record that is not in the Recycle Bin.
    UndeleteFailed,
    /// 500: internal error; the write may have landed.
    UnknownException,
}

/// One element of a REST error array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesforceError {
    /// `errorCode`.
    pub error_code: SalesforceErrorCode,
    /// `message`.
    pub message: String,
    /// `fields` concerned.
    pub fields: Vec<String>,
}

/// A record as stored (and as `Get` returns it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SfRecord {
    /// sObject API name.
    pub object: String,
    /// 15-character id: key prefix + counter.
    pub id: String,
    /// `ExternalId__c` (kept out of `fields`).
    pub external_id: Option<String>,
    /// Other fields; never contains `ExternalId__c` or null values.
    pub fields: BTreeMap<String, Value>,
    /// `CreatedDate` (service clock).
    pub created_ms: u64,
    /// `LastModifiedDate` (service clock).
    pub last_modified_ms: u64,
    /// `IsDeleted`: in the Recycle Bin (kept for undelete and for the
    /// checkers; never matched by upsert or query).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_deleted: bool,
}

/// Kind of a recorded change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Inserted (by create or upsert).
    Created,
    /// Updated (by update or upsert).
    Updated,
    /// Deleted (to the Recycle Bin).
    Deleted,
    /// Undeleted (back from the Recycle Bin).
    Undeleted,
}

/// One applied write, in commit order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SfChange {
    /// Position in the history, from 0.
    pub seq: u64,
    /// Commit instant.
    pub at_ms: u64,
    /// sObject API name.
    pub object: String,
    /// Record id.
    pub id: String,
    /// Insert or update.
    pub kind: ChangeKind,
    /// The record's external id after the change.
    pub external_id: Option<String>,
    /// The values written (`null` = cleared), external id excluded.
    pub fields: BTreeMap<String, Value>,
}

/// Everything that happened, for the checkers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesforceGroundTruth {
    /// Every record, by id.
    pub records: BTreeMap<String, SfRecord>,
    /// Every applied write, in commit order.
    pub history: Vec<SfChange>,
    /// API requests received (including rejected ones, except those over
    /// the daily limit).
    pub api_calls: u64,
    /// Saves a validation rule refused.
    #[serde(default)]
    pub validation_refusals: u64,
    /// Writes that failed `UNABLE_TO_LOCK_ROW` waiting on another write's
    /// row lock (injected throttles not counted).
    #[serde(default)]
    pub lock_conflicts: u64,
    /// Sessions issued ([`SalesforceCall::Login`] answered with a token).
    #[serde(default)]
    pub logins: u64,
    /// API requests refused 401 `INVALID_SESSION_ID` (expired, revoked or
    /// unknown session): nothing applied, not counted in `api_calls`.
    #[serde(default)]
    pub invalid_session_refusals: u64,
    /// Sessions that ended from inactivity, each counted once, when a
    /// request first met it expired.
    #[serde(default)]
    pub session_expiries: u64,
    /// Logins that came after a request was refused for an expired session:
    /// the client re-authenticated.
    #[serde(default)]
    pub relogins_after_expiry: u64,
    /// Sessions an admin revoked ([`Salesforce::revoke_sessions`]).
    #[serde(default)]
    pub sessions_revoked: u64,
    /// Logins that came after a request was refused for a revoked session.
    #[serde(default)]
    pub relogins_after_revocation: u64,
    /// Records an admin deleted ([`Salesforce::delete_by_admin`]), in
    /// deletion order: the environment's deletions, not any client's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_deletions: Vec<String>,
    /// Records an admin restored from the Recycle Bin
    /// ([`Salesforce::restore_by_admin`]), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_restorations: Vec<String>,
}

impl SalesforceGroundTruth {
    /// Live (not deleted) records of `object` with external id
    /// `external_id`, in id order.
    pub fn with_external_id<'a>(
        &'a self,
        object: &'a str,
        external_id: &'a str,
    ) -> impl Iterator<Item = &'a SfRecord> {
        self.records.values().filter(move |r| {
            !r.is_deleted && r.object == object && r.external_id.as_deref() == Some(external_id)
        })
    }

    /// Live (not deleted) records of `object`, in id order.
    pub fn records_of<'a>(&'a self, object: &'a str) -> impl Iterator<Item = &'a SfRecord> {
        self.records
            .values()
            .filter(move |r| !r.is_deleted && r.object == object)
    }

    /// The changes of one record, oldest first.
    pub fn history_of<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a SfChange> {
        self.history.iter().filter(move |c| c.id == id)
    }
}

/// The response body. Adjacently tagged: an internally tagged enum cannot
/// serialise `Errors` (a newtype around a sequence), which the trace hash
/// found (`trace::Payload`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "body", rename_all = "snake_case")]
pub enum SalesforceBody {
    /// Create / upsert result (`{id, success: true, created}`).
    SaveResult {
        /// Record id.
        id: String,
        /// Inserted (true) or updated (false).
        created: bool,
    },
    /// 204 after an update.
    NoContent,
    /// A record.
    Record(SfRecord),
    /// A query result (all rows; `done` is always true).
    QueryResult {
        /// Number of rows.
        total_size: usize,
        /// No more pages.
        done: bool,
        /// The rows, in id order.
        records: Vec<SfRecord>,
    },
    /// 300: the external id matches several records.
    MultipleChoices {
        /// Their ids.
        ids: Vec<String>,
    },
    /// 200 to a token request (`{access_token, issued_at, …}`).
    Token {
        /// The session id to send as `Authorization: Bearer`.
        access_token: String,
        /// `issued_at`, on the service's clock.
        issued_at_ms: u64,
    },
    /// An error array.
    Errors(Vec<SalesforceError>),
}

/// A response: HTTP status and body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesforceResponse {
    /// HTTP status.
    pub status: u16,
    /// Body.
    pub body: SalesforceBody,
}

impl SalesforceResponse {
    fn error(status: u16, code: SalesforceErrorCode, message: String, fields: &[&str]) -> Self {
        SalesforceResponse {
            status,
            body: SalesforceBody::Errors(vec![SalesforceError {
                error_code: code,
                message,
                fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            }]),
        }
    }

    fn bad(code: SalesforceErrorCode, message: String, fields: &[&str]) -> Self {
        Self::error(400, code, message, fields)
    }

    fn not_found(message: String) -> Self {
        Self::error(404, SalesforceErrorCode::NotFound, message, &[])
    }

    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first error code, if this is an error.
    pub fn error_code(&self) -> Option<SalesforceErrorCode> {
        match &self.body {
            SalesforceBody::Errors(errors) => errors.first().map(|e| e.error_code),
            _ => None,
        }
    }

    /// The access token of a login's answer.
    pub fn access_token(&self) -> Option<&str> {
        match &self.body {
            SalesforceBody::Token { access_token, .. } => Some(access_token),
            _ => None,
        }
    }

    /// 401 `INVALID_SESSION_ID`: log in again; nothing was applied.
    pub fn is_invalid_session(&self) -> bool {
        self.status == 401 && self.error_code() == Some(SalesforceErrorCode::InvalidSessionId)
    }

    /// The id of a save result or returned record.
    pub fn id(&self) -> Option<&str> {
        match &self.body {
            SalesforceBody::SaveResult { id, .. } => Some(id),
            SalesforceBody::Record(r) => Some(&r.id),
            _ => None,
        }
    }
}

impl SalesforceRequest {
    /// The request's kind, as the coverage catalogue names it (`upsert`,
    /// `query_by_external_id`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            SalesforceRequest::Upsert { .. } => "upsert",
            SalesforceRequest::Create { .. } => "create",
            SalesforceRequest::Update { .. } => "update",
            SalesforceRequest::Get { .. } => "get",
            SalesforceRequest::QueryByExternalId { .. } => "query_by_external_id",
            SalesforceRequest::Delete { .. } => "delete",
            SalesforceRequest::Undelete { .. } => "undelete",
        }
    }
}

/// Every response class the org can answer a request of kind `kind` (see
/// [`SalesforceRequest::kind`]) with ([`SalesforceResponse::class`] of
/// each possible response); empty for an unknown kind. Every kind can meet
/// the API limit (403), lock contention (`UNABLE_TO_LOCK_ROW`), an unknown
/// object (404), a server error before (503) or after (500) applying.
pub fn response_classes(kind: &str) -> Vec<&'static str> {
    const SAVE: &[&str] = &[
        "400 FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "400 REQUIRED_FIELD_MISSING",
        "400 invalid request",
    ];
    let own: &[&str] = match kind {
        "upsert" => &[
            "201 created",
            "200 saved an existing record",
            "300 MULTIPLE_CHOICES",
            "400 DUPLICATE_VALUE",
            "412 PRECONDITION_FAILED",
        ],
        "create" => &["201 created", "400 DUPLICATE_VALUE"],
        "update" => &[
            "204 no content",
            "404 ENTITY_IS_DELETED",
            "412 PRECONDITION_FAILED",
        ],
        "get" => &["200 record", "404 ENTITY_IS_DELETED", "400 invalid request"],
        "query_by_external_id" => &["200 query result"],
        "delete" => &[
            "204 no content",
            "404 ENTITY_IS_DELETED",
            "400 invalid request",
        ],
        "undelete" => &[
            "200 saved an existing record",
            "400 UNDELETE_FAILED",
            "400 invalid request",
        ],
        // The token endpoint: a throttle does not apply to it.
        "login" => {
            return vec![
                "200 token",
                "500 UNKNOWN_EXCEPTION",
                "503 SERVER_UNAVAILABLE",
            ]
        }
        _ => return Vec::new(),
    };
    let mut v: Vec<&'static str> = own.to_vec();
    if matches!(kind, "upsert" | "create" | "update") {
        v.extend(SAVE);
    }
    v.extend([
        "401 INVALID_SESSION_ID",
        "400 UNABLE_TO_LOCK_ROW",
        "403 REQUEST_LIMIT_EXCEEDED",
        "404 NOT_FOUND",
        "500 UNKNOWN_EXCEPTION",
        "503 SERVER_UNAVAILABLE",
    ]);
    v.sort_unstable();
    v.dedup();
    v
}

impl SalesforceResponse {
    /// An injected 503 (before applying, or at the edge): nothing happened.
    fn unavailable() -> SalesforceResponse {
        SalesforceResponse::error(
            503,
            SalesforceErrorCode::ServerUnavailable,
            "Server unavailable".to_owned(),
            &[],
        )
    }

    /// An injected 500 after the request was applied.
    fn failed_after_applying() -> SalesforceResponse {
        SalesforceResponse::error(
            500,
            SalesforceErrorCode::UnknownException,
            "An unexpected error occurred.".to_owned(),
            &[],
        )
    }

    /// The response's class for the coverage catalogue: the status and
    /// what the body says (created or saved, the first error's code).
    /// Malformed-request errors (field names, read-only fields, ids,
    /// lengths) are one class, `400 invalid request`.
    pub fn class(&self) -> &'static str {
        use SalesforceErrorCode::*;
        match &self.body {
            SalesforceBody::SaveResult { created: true, .. } => "201 created",
            SalesforceBody::SaveResult { created: false, .. } => "200 saved an existing record",
            SalesforceBody::NoContent => "204 no content",
            SalesforceBody::Token { .. } => "200 token",
            SalesforceBody::Record(_) => "200 record",
            SalesforceBody::QueryResult { .. } => "200 query result",
            SalesforceBody::MultipleChoices { .. } => "300 MULTIPLE_CHOICES",
            SalesforceBody::Errors(errors) => match errors.first().map(|e| e.error_code) {
                Some(DuplicateValue) => "400 DUPLICATE_VALUE",
                Some(EntityIsDeleted) => "404 ENTITY_IS_DELETED",
                Some(FieldCustomValidationException) => "400 FIELD_CUSTOM_VALIDATION_EXCEPTION",
                Some(InvalidSessionId) => "401 INVALID_SESSION_ID",
                Some(InvalidField | InvalidFieldForInsertUpdate | MalformedId | StringTooLong)
                | None => "400 invalid request",
                Some(NotFound) => "404 NOT_FOUND",
                Some(PreconditionFailed) => "412 PRECONDITION_FAILED",
                Some(RequestLimitExceeded) => "403 REQUEST_LIMIT_EXCEEDED",
                Some(RequiredFieldMissing) => "400 REQUIRED_FIELD_MISSING",
                Some(ServerUnavailable) => "503 SERVER_UNAVAILABLE",
                Some(UnableToLockRow) => "400 UNABLE_TO_LOCK_ROW",
                Some(UndeleteFailed) => "400 UNDELETE_FAILED",
                Some(UnknownException) => "500 UNKNOWN_EXCEPTION",
            },
        }
    }
}

#[derive(Clone, Debug)]
struct Pending {
    request: SalesforceRequest,
    injected: Option<Injected>,
    /// For upserts: how many records matched when the request started.
    matched_at_begin: usize,
    /// The existing record this write locks (update, delete, undelete, an
    /// upsert that matched one record), if any.
    locks: Option<String>,
}

/// The simulated Salesforce org.
#[derive(Clone, Debug)]
pub struct Salesforce {
    config: SalesforceConfig,
    objects: Vec<ObjectType>,
    truth: SalesforceGroundTruth,
    in_flight: InFlight<Pending>,
    /// Instants of the API calls in the current 24 h window (only kept when
    /// there is a limit).
    api_window: VecDeque<u64>,
    last_id: u64,
    /// Every session issued, by access token.
    sessions: BTreeMap<String, Session>,
    /// A request was refused for an expired session since the last login.
    expiry_refused: bool,
    /// A request was refused for a revoked session since the last login.
    revocation_refused: bool,
}

/// One session of the org.
#[derive(Clone, Debug)]
struct Session {
    /// The last request under it (or its login), on the service's clock.
    last_used_ms: u64,
    /// Ended: by inactivity (found by a request) or revoked.
    ended: Option<SessionEnd>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SessionEnd {
    Expired,
    Revoked,
}

/// The canonical (15-character) form of a record id, if well formed.
fn canonical_id(id: &str) -> Option<&str> {
    let well_formed =
        (id.len() == 15 || id.len() == 18) && id.bytes().all(|b| b.is_ascii_alphanumeric());
    well_formed.then(|| &id[..15])
}

impl Salesforce {
    /// A fresh org.
    pub fn new(config: SalesforceConfig) -> Self {
        Salesforce {
            objects: org_objects(&config.custom_objects),
            config,
            truth: SalesforceGroundTruth::default(),
            in_flight: InFlight::default(),
            api_window: VecDeque::new(),
            last_id: 0,
            sessions: BTreeMap::new(),
            expiry_refused: false,
            revocation_refused: false,
        }
    }

    /// An admin revokes every session of the org (Setup → Session
    /// Management, or the OAuth revoke endpoint for a connected app's
    /// tokens): each later request under one answers 401
    /// `INVALID_SESSION_ID`. A request already in flight completes (its
    /// session was checked when it arrived). Returns how many live sessions
    /// were revoked. For environment events; no scenario sends it yet.
    pub fn revoke_sessions(&mut self) -> usize {
        let mut revoked = 0;
        for session in self.sessions.values_mut() {
            if session.ended.is_none() {
                session.ended = Some(SessionEnd::Revoked);
                revoked += 1;
            }
        }
        self.truth.sessions_revoked += revoked as u64;
        revoked
    }

    /// An admin deletes a live record (from the UI, or a data-cleanup
    /// job): the `nth` live record of the org at `now_ms` that no write in
    /// flight holds the lock of, counted round (`nth` modulo their number),
    /// in id order. It goes to the Recycle Bin as a `DELETE` would put it
    /// (REST API Developer Guide, "Delete a Record"), and the ground truth
    /// lists it in `admin_deletions`. A locked record is skipped: a UI
    /// delete waits for the lock and lands after the write, which another
    /// seed's event at a later instant stands for. Not an API call (no
    /// session, not counted against the API limit). Returns the record as
    /// deleted, or `None` when no record is live and unlocked.
    pub fn delete_by_admin(&mut self, now_ms: u64, nth: u32) -> Option<SfRecord> {
        self.tick(now_ms);
        let locked: BTreeSet<&str> = self
            .in_flight
            .iter()
            .filter_map(|(_, p)| p.locks.as_deref())
            .collect();
        let live: Vec<&str> = self
            .truth
            .records
            .values()
            .filter(|r| !r.is_deleted && !locked.contains(r.id.as_str()))
            .map(|r| r.id.as_str())
            .collect();
        if live.is_empty() {
            return None;
        }
        let id = live[nth as usize % live.len()].to_owned();
        let r = self.delete(now_ms, &id);
        assert_eq!(r.status, 204, "a live record deletes: {r:?}");
        self.truth.admin_deletions.push(id.clone());
        let record = self.truth.records[&id].clone();
        debug_assert!(record.is_deleted);
        Some(record)
    }

    /// An admin restores a record from the Recycle Bin (Setup or the UI:
    /// Apex Developer Guide, "Restoring Deleted Records"): the `nth`
    /// deleted record at `now_ms`, counted round, in id order, restored as
    /// `undelete()` would — which fails, and nothing happens, when a live
    /// record now holds its unique external id (`DUPLICATE_VALUE`). The
    /// ground truth lists it in `admin_restorations`. Not an API call.
    /// Returns the record as restored, or `None` when the bin is empty or
    /// the undelete failed.
    pub fn restore_by_admin(&mut self, now_ms: u64, nth: u32) -> Option<SfRecord> {
        self.tick(now_ms);
        let deleted: Vec<(String, String)> = self
            .truth
            .records
            .values()
            .filter(|r| r.is_deleted)
            .map(|r| (r.object.clone(), r.id.clone()))
            .collect();
        if deleted.is_empty() {
            return None;
        }
        let (object, id) = deleted[nth as usize % deleted.len()].clone();
        let r = self.undelete(now_ms, &object, &id);
        if !r.is_success() {
            return None;
        }
        self.truth.admin_restorations.push(id.clone());
        Some(self.truth.records[&id].clone())
    }

    /// Sessions issued so far (ended ones included).
    pub fn sessions_issued(&self) -> usize {
        self.sessions.len()
    }

    /// A token request: a new session, its token a counter.
    fn login(&mut self, now_ms: u64) -> SalesforceResponse {
        self.truth.logins += 1;
        if std::mem::take(&mut self.expiry_refused) {
            self.truth.relogins_after_expiry += 1;
        }
        if std::mem::take(&mut self.revocation_refused) {
            self.truth.relogins_after_revocation += 1;
        }
        let access_token = format!("00D000000000001!session-{}", self.truth.logins);
        self.sessions.insert(
            access_token.clone(),
            Session {
                last_used_ms: now_ms,
                ended: None,
            },
        );
        SalesforceResponse {
            status: 200,
            body: SalesforceBody::Token {
                access_token,
                issued_at_ms: now_ms,
            },
        }
    }

    /// Whether `token` names a live session at `now_ms`; a request under it
    /// resets its inactivity timer. Otherwise the 401 to answer.
    fn authenticate(&mut self, now_ms: u64, token: &str) -> Result<(), SalesforceResponse> {
        let timeout = self.config.session_timeout_ms;
        let ended = match self.sessions.get_mut(token) {
            None => None,
            Some(s) if s.ended.is_some() => s.ended,
            Some(s) if now_ms.saturating_sub(s.last_used_ms) >= timeout => {
                s.ended = Some(SessionEnd::Expired);
                self.truth.session_expiries += 1;
                s.ended
            }
            Some(s) => {
                s.last_used_ms = s.last_used_ms.max(now_ms);
                return Ok(());
            }
        };
        self.truth.invalid_session_refusals += 1;
        match ended {
            Some(SessionEnd::Expired) => self.expiry_refused = true,
            Some(SessionEnd::Revoked) => self.revocation_refused = true,
            None => {}
        }
        Err(SalesforceResponse::error(
            401,
            SalesforceErrorCode::InvalidSessionId,
            "Session expired or invalid".to_owned(),
            &[],
        ))
    }

    /// The configuration.
    pub fn config(&self) -> &SalesforceConfig {
        &self.config
    }

    /// API calls counted in the current rolling 24 h window (when limited).
    pub fn api_calls_in_window(&self) -> usize {
        self.api_window.len()
    }

    /// Checks the model's internal invariants; panics on a violation.
    pub fn check_invariants(&self) {
        let mut seen: BTreeMap<(&str, &str), &str> = BTreeMap::new();
        for (id, r) in &self.truth.records {
            assert_eq!(id, &r.id);
            let ty = self
                .object_type(&r.object)
                .expect("record of unknown object");
            assert!(r.id.starts_with(&ty.key_prefix) && r.id.len() == 15);
            assert!(!r.fields.contains_key(EXTERNAL_ID_FIELD));
            assert!(r.fields.values().all(|v| !v.is_null()));
            let created = self
                .truth
                .history_of(id)
                .filter(|c| c.kind == ChangeKind::Created)
                .count();
            assert_eq!(created, 1, "record {id} created {created} times");
            if let (Some(ext), true, false) =
                (&r.external_id, self.config.external_id_unique, r.is_deleted)
            {
                let previous = seen.insert((&r.object, ext), id);
                assert!(
                    previous.is_none(),
                    "unique external id {ext} on two records"
                );
            }
        }
        for (i, c) in self.truth.history.iter().enumerate() {
            assert_eq!(c.seq, i as u64);
            assert!(self.truth.records.contains_key(&c.id));
        }
        if let Some(limit) = self.config.daily_api_limit {
            assert!(self.api_window.len() <= limit as usize);
        }
        assert_eq!(self.sessions.len() as u64, self.truth.logins);
        let expired = self
            .sessions
            .values()
            .filter(|s| s.ended == Some(SessionEnd::Expired))
            .count() as u64;
        assert_eq!(expired, self.truth.session_expiries);
    }

    fn matching(&self, object: &str, external_id: &str) -> Vec<String> {
        self.truth
            .with_external_id(object, external_id)
            .map(|r| r.id.clone())
            .collect()
    }

    // ----- validation at the door -----

    fn validate_fields(
        fields: &BTreeMap<String, Value>,
        allow_external_id: bool,
    ) -> Result<(), SalesforceResponse> {
        use SalesforceErrorCode::*;
        if fields.len() > MAX_FIELDS_PER_WRITE {
            return Err(SalesforceResponse::bad(
                InvalidField,
                format!("at most {MAX_FIELDS_PER_WRITE} fields per write"),
                &[],
            ));
        }
        for (name, value) in fields {
            if !valid_field_name(name) {
                return Err(SalesforceResponse::bad(
                    InvalidField,
                    format!("No such column '{name}' on sobject"),
                    &[name],
                ));
            }
            if READ_ONLY_FIELDS.contains(&name.as_str()) {
                return Err(SalesforceResponse::bad(
                    InvalidFieldForInsertUpdate,
                    format!("Unable to create/update fields: {name}"),
                    &[name],
                ));
            }
            match value {
                Value::Array(_) | Value::Object(_) => {
                    return Err(SalesforceResponse::bad(
                        InvalidField,
                        format!("Cannot deserialize a structured value into field {name}"),
                        &[name],
                    ))
                }
                Value::String(s) if s.chars().count() > MAX_TEXT_CHARS => {
                    return Err(SalesforceResponse::bad(
                        StringTooLong,
                        format!("{name}: data value too large"),
                        &[name],
                    ))
                }
                _ => {}
            }
            if name == EXTERNAL_ID_FIELD {
                if !allow_external_id {
                    return Err(SalesforceResponse::bad(
                        InvalidField,
                        format!("{EXTERNAL_ID_FIELD} in the body must match the URL"),
                        &[name],
                    ));
                }
                match value {
                    Value::Null => {}
                    Value::String(s) => Self::validate_external_id(s)?,
                    _ => {
                        return Err(SalesforceResponse::bad(
                            InvalidField,
                            format!("{EXTERNAL_ID_FIELD} must be a string"),
                            &[name],
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    fn validate_external_id(value: &str) -> Result<(), SalesforceResponse> {
        let chars = value.chars().count();
        if chars == 0 {
            return Err(SalesforceResponse::bad(
                SalesforceErrorCode::InvalidField,
                format!("{EXTERNAL_ID_FIELD} must not be empty"),
                &[EXTERNAL_ID_FIELD],
            ));
        }
        if chars > MAX_EXTERNAL_ID_CHARS {
            return Err(SalesforceResponse::bad(
                SalesforceErrorCode::StringTooLong,
                format!("{EXTERNAL_ID_FIELD}: data value too large (max {MAX_EXTERNAL_ID_CHARS})"),
                &[EXTERNAL_ID_FIELD],
            ));
        }
        Ok(())
    }

    /// The org's object called `name`.
    pub fn object_type(&self, name: &str) -> Option<&ObjectType> {
        self.objects.iter().find(|o| o.name == name)
    }

    fn validate(&self, req: &SalesforceRequest) -> Result<(), SalesforceResponse> {
        let object = req.object();
        if self.object_type(object).is_none() {
            return Err(SalesforceResponse::not_found(format!(
                "The requested resource does not exist: sobject type '{object}'"
            )));
        }
        match req {
            SalesforceRequest::Upsert {
                external_id,
                fields,
                ..
            } => {
                Self::validate_external_id(external_id)?;
                // The body may repeat the external id only if it matches.
                let body_ext = fields.get(EXTERNAL_ID_FIELD);
                let consistent = body_ext.is_none_or(|v| v.as_str() == Some(external_id.as_str()));
                Self::validate_fields(fields, consistent)
            }
            SalesforceRequest::Create { fields, .. } => Self::validate_fields(fields, true),
            SalesforceRequest::Update { id, fields, .. } => {
                Self::validate_id(id)?;
                Self::validate_fields(fields, true)
            }
            SalesforceRequest::Get { id, .. }
            | SalesforceRequest::Delete { id, .. }
            | SalesforceRequest::Undelete { id, .. } => Self::validate_id(id),
            SalesforceRequest::QueryByExternalId { .. } => Ok(()),
        }
    }

    fn validate_id(id: &str) -> Result<(), SalesforceResponse> {
        match canonical_id(id) {
            Some(_) => Ok(()),
            None => Err(SalesforceResponse::bad(
                SalesforceErrorCode::MalformedId,
                format!("malformed id {id}"),
                &[],
            )),
        }
    }

    // ----- execution at commit -----

    fn insert(
        &mut self,
        now_ms: u64,
        object: &str,
        external_id: Option<String>,
        fields: &BTreeMap<String, Value>,
    ) -> SalesforceResponse {
        let ty = self.object_type(object).expect("validated").clone();
        let missing: Vec<&str> = ty
            .required_on_insert
            .iter()
            .copied()
            .filter(|f| fields.get(*f).is_none_or(Value::is_null))
            .collect();
        if !missing.is_empty() {
            return SalesforceResponse::bad(
                SalesforceErrorCode::RequiredFieldMissing,
                format!("Required fields are missing: [{}]", missing.join(", ")),
                &missing,
            );
        }
        if let Some(ext) = &external_id {
            if let Some(dup) = self.unique_conflict(object, ext, None) {
                return dup;
            }
        }
        if let Some(refused) = self.rule_refuses(object, fields) {
            return refused;
        }
        self.last_id += 1;
        let id = format!("{}{:012}", ty.key_prefix, self.last_id);
        let stored: BTreeMap<String, Value> = fields
            .iter()
            .filter(|(k, v)| k.as_str() != EXTERNAL_ID_FIELD && !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let record = SfRecord {
            object: object.to_owned(),
            id: id.clone(),
            external_id: external_id.clone(),
            fields: stored.clone(),
            created_ms: now_ms,
            last_modified_ms: now_ms,
            is_deleted: false,
        };
        self.truth.records.insert(id.clone(), record);
        self.log(
            now_ms,
            object,
            &id,
            ChangeKind::Created,
            external_id,
            stored,
        );
        SalesforceResponse {
            status: 201,
            body: SalesforceBody::SaveResult { id, created: true },
        }
    }

    /// `FIELD_CUSTOM_VALIDATION_EXCEPTION` if a validation rule refuses a
    /// record of `object` with `fields` (as it would be after the save).
    fn rule_refuses(
        &mut self,
        object: &str,
        fields: &BTreeMap<String, Value>,
    ) -> Option<SalesforceResponse> {
        let rule = self
            .config
            .validation_rules
            .iter()
            .find(|r| r.rejects_record(object, fields))?;
        self.truth.validation_refusals += 1;
        Some(SalesforceResponse::bad(
            SalesforceErrorCode::FieldCustomValidationException,
            rule.message.clone(),
            &[rule.field.as_str()],
        ))
    }

    /// `DUPLICATE_VALUE` if the unique external id is taken by another record.
    fn unique_conflict(
        &self,
        object: &str,
        ext: &str,
        except: Option<&str>,
    ) -> Option<SalesforceResponse> {
        if !self.config.external_id_unique {
            return None;
        }
        let other = self
            .truth
            .with_external_id(object, ext)
            .find(|r| Some(r.id.as_str()) != except)?;
        Some(SalesforceResponse::bad(
            SalesforceErrorCode::DuplicateValue,
            format!(
                "duplicate value found: {EXTERNAL_ID_FIELD} duplicates value on record with id: {}",
                other.id
            ),
            &[EXTERNAL_ID_FIELD],
        ))
    }

    /// Updates record `id`; `status` is the success status (200 upsert, 204 update).
    fn update(
        &mut self,
        now_ms: u64,
        id: &str,
        fields: &BTreeMap<String, Value>,
        if_unmodified_since_ms: Option<u64>,
        upsert: bool,
    ) -> SalesforceResponse {
        let record = &self.truth.records[id];
        if let Some(since_ms) = if_unmodified_since_ms {
            // HTTP-date resolution: whole seconds.
            if record.last_modified_ms / 1000 > since_ms / 1000 {
                return SalesforceResponse::error(
                    412,
                    SalesforceErrorCode::PreconditionFailed,
                    format!("The record {id} was modified after the If-Unmodified-Since time"),
                    &[],
                );
            }
        }
        let ty = self.object_type(&record.object).expect("stored object");
        let cleared: Vec<&str> = ty
            .required_on_insert
            .iter()
            .copied()
            .filter(|f| fields.get(*f).is_some_and(Value::is_null))
            .collect();
        if !cleared.is_empty() {
            return SalesforceResponse::bad(
                SalesforceErrorCode::RequiredFieldMissing,
                format!("Required fields are missing: [{}]", cleared.join(", ")),
                &cleared,
            );
        }
        let mut external_id = record.external_id.clone();
        match fields.get(EXTERNAL_ID_FIELD) {
            Some(Value::String(ext)) => {
                let object = record.object.clone();
                if let Some(dup) = self.unique_conflict(&object, ext, Some(id)) {
                    return dup;
                }
                external_id = Some(ext.clone());
            }
            Some(Value::Null) => external_id = None,
            Some(_) => unreachable!("validated: external id is a string or null"),
            None => {}
        }
        let written: BTreeMap<String, Value> = fields
            .iter()
            .filter(|(k, _)| k.as_str() != EXTERNAL_ID_FIELD)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let record = &self.truth.records[id];
        let mut after = record.fields.clone();
        for (k, v) in &written {
            match v.is_null() {
                true => after.remove(k),
                false => after.insert(k.clone(), v.clone()),
            };
        }
        let object = record.object.clone();
        if let Some(refused) = self.rule_refuses(&object, &after) {
            return refused;
        }
        let record = self.truth.records.get_mut(id).expect("checked above");
        record.fields = after;
        record.external_id = external_id.clone();
        record.last_modified_ms = now_ms;
        self.log(
            now_ms,
            &object,
            id,
            ChangeKind::Updated,
            external_id,
            written,
        );
        if upsert {
            SalesforceResponse {
                status: 200,
                body: SalesforceBody::SaveResult {
                    id: id.to_owned(),
                    created: false,
                },
            }
        } else {
            SalesforceResponse {
                status: 204,
                body: SalesforceBody::NoContent,
            }
        }
    }

    fn log(
        &mut self,
        now_ms: u64,
        object: &str,
        id: &str,
        kind: ChangeKind,
        external_id: Option<String>,
        fields: BTreeMap<String, Value>,
    ) {
        let seq = self.truth.history.len() as u64;
        self.truth.history.push(SfChange {
            seq,
            at_ms: now_ms,
            object: object.to_owned(),
            id: id.to_owned(),
            kind,
            external_id,
            fields,
        });
    }

    /// The stored live record `id` of `object`, or 404 (`ENTITY_IS_DELETED`
    /// for a record in the Recycle Bin).
    fn find(&self, object: &str, id: &str) -> Result<String, SalesforceResponse> {
        let id = canonical_id(id).expect("validated");
        match self.truth.records.get(id) {
            Some(r) if r.object == object && r.is_deleted => Err(SalesforceResponse::error(
                404,
                SalesforceErrorCode::EntityIsDeleted,
                "entity is deleted".to_owned(),
                &[],
            )),
            Some(r) if r.object == object => Ok(id.to_owned()),
            _ => Err(SalesforceResponse::not_found(format!(
                "The requested resource does not exist: {object} {id}"
            ))),
        }
    }

    fn delete(&mut self, now_ms: u64, id: &str) -> SalesforceResponse {
        let record = self.truth.records.get_mut(id).expect("found");
        record.is_deleted = true;
        record.last_modified_ms = now_ms;
        let (object, external_id) = (record.object.clone(), record.external_id.clone());
        self.log(
            now_ms,
            &object,
            id,
            ChangeKind::Deleted,
            external_id,
            BTreeMap::new(),
        );
        SalesforceResponse {
            status: 204,
            body: SalesforceBody::NoContent,
        }
    }

    fn undelete(&mut self, now_ms: u64, object: &str, id: &str) -> SalesforceResponse {
        let id = canonical_id(id).expect("validated").to_owned();
        let record = match self.truth.records.get(&id) {
            Some(r) if r.object == object => r,
            _ => {
                return SalesforceResponse::not_found(format!(
                    "The requested resource does not exist: {object} {id}"
                ))
            }
        };
        if !record.is_deleted {
            return SalesforceResponse::bad(
                SalesforceErrorCode::UndeleteFailed,
                "Entity is not in the recycle bin".to_owned(),
                &[],
            );
        }
        let external_id = record.external_id.clone();
        if let Some(ext) = &external_id {
            if let Some(dup) = self.unique_conflict(object, ext, Some(&id)) {
                return dup;
            }
        }
        let record = self.truth.records.get_mut(&id).expect("found above");
        record.is_deleted = false;
        record.last_modified_ms = now_ms;
        self.log(
            now_ms,
            object,
            &id,
            ChangeKind::Undeleted,
            external_id,
            BTreeMap::new(),
        );
        SalesforceResponse {
            status: 200,
            body: SalesforceBody::SaveResult { id, created: false },
        }
    }

    /// As `req` starts: how many records an upsert's external id matches
    /// (0 for other requests), and the existing record the write would
    /// lock, if any.
    fn lock_target(&self, req: &SalesforceRequest) -> (usize, Option<String>) {
        match req {
            SalesforceRequest::Upsert {
                object,
                external_id,
                ..
            } => {
                let matches = self.matching(object, external_id);
                let locks = match matches.as_slice() {
                    [id] => Some(id.clone()),
                    _ => None,
                };
                (matches.len(), locks)
            }
            SalesforceRequest::Update { id, .. }
            | SalesforceRequest::Delete { id, .. }
            | SalesforceRequest::Undelete { id, .. } => (0, canonical_id(id).map(str::to_owned)),
            _ => (0, None),
        }
    }

    fn execute(&mut self, now_ms: u64, pending: &Pending) -> SalesforceResponse {
        match &pending.request {
            SalesforceRequest::Upsert {
                object,
                external_id,
                fields,
                if_unmodified_since_ms,
            } => {
                let matches = self.matching(object, external_id);
                match matches.as_slice() {
                    [] => self.insert(now_ms, object, Some(external_id.clone()), fields),
                    [id] if pending.matched_at_begin > 0 => {
                        let id = id.clone();
                        self.update(now_ms, &id, fields, *if_unmodified_since_ms, true)
                    }
                    // Both started before either committed: the second
                    // insert meets the first one's record.
                    [_] => self.insert(now_ms, object, Some(external_id.clone()), fields),
                    _ => SalesforceResponse {
                        status: 300,
                        body: SalesforceBody::MultipleChoices { ids: matches },
                    },
                }
            }
            SalesforceRequest::Create { object, fields } => {
                let ext = fields
                    .get(EXTERNAL_ID_FIELD)
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.insert(now_ms, object, ext, fields)
            }
            SalesforceRequest::Update {
                object,
                id,
                fields,
                if_unmodified_since_ms,
            } => match self.find(object, id) {
                Ok(id) => self.update(now_ms, &id, fields, *if_unmodified_since_ms, false),
                Err(resp) => resp,
            },
            SalesforceRequest::Get { object, id } => match self.find(object, id) {
                Ok(id) => SalesforceResponse {
                    status: 200,
                    body: SalesforceBody::Record(self.truth.records[&id].clone()),
                },
                Err(resp) => resp,
            },
            SalesforceRequest::Delete { object, id } => match self.find(object, id) {
                Ok(id) => self.delete(now_ms, &id),
                Err(resp) => resp,
            },
            SalesforceRequest::Undelete { object, id } => self.undelete(now_ms, object, id),
            SalesforceRequest::QueryByExternalId {
                object,
                external_id,
            } => {
                let records: Vec<SfRecord> = self
                    .truth
                    .with_external_id(object, external_id)
                    .cloned()
                    .collect();
                SalesforceResponse {
                    status: 200,
                    body: SalesforceBody::QueryResult {
                        total_size: records.len(),
                        done: true,
                        records,
                    },
                }
            }
        }
    }
}

impl ServiceModel for Salesforce {
    type Request = SalesforceCall;
    type Response = SalesforceResponse;
    type GroundTruth = SalesforceGroundTruth;

    fn begin(
        &mut self,
        now_ms: u64,
        call: SalesforceCall,
        injected: Option<Injected>,
    ) -> Begin<SalesforceResponse> {
        self.tick(now_ms);
        let req = match call {
            SalesforceCall::Login => {
                return Begin::Done(match injected {
                    Some(Injected::FailBeforeApply | Injected::EdgeUnavailable) => {
                        SalesforceResponse::unavailable()
                    }
                    Some(Injected::FailAfterApply) => {
                        let _issued = self.login(now_ms);
                        SalesforceResponse::failed_after_applying()
                    }
                    None | Some(Injected::Throttle) => self.login(now_ms),
                })
            }
            SalesforceCall::Api { session, request } => {
                if let Err(refused) = self.authenticate(now_ms, &session) {
                    return Begin::Done(refused);
                }
                request
            }
        };
        if let Some(limit) = self.config.daily_api_limit {
            if self.api_window.len() >= limit as usize {
                return Begin::Done(SalesforceResponse::error(
                    403,
                    SalesforceErrorCode::RequestLimitExceeded,
                    "TotalRequests Limit exceeded.".to_owned(),
                    &[],
                ));
            }
            self.api_window.push_back(now_ms);
        }
        self.truth.api_calls += 1;
        if injected == Some(Injected::Throttle) {
            return Begin::Done(SalesforceResponse::bad(
                SalesforceErrorCode::UnableToLockRow,
                "unable to obtain exclusive access to this record".to_owned(),
                &[],
            ));
        }
        if let Err(resp) = self.validate(&req) {
            return Begin::Done(resp);
        }
        let (matched_at_begin, locks) = self.lock_target(&req);
        Begin::Pending(self.in_flight.insert(Pending {
            request: req,
            injected,
            matched_at_begin,
            locks,
        }))
    }

    fn complete(&mut self, now_ms: u64, ticket: Ticket) -> SalesforceResponse {
        self.tick(now_ms);
        let pending = self.in_flight.take(ticket);
        // An earlier write of the same record still holds its lock: this
        // one waited its whole service time for it.
        let locked_out = pending.locks.as_ref().is_some_and(|id| {
            self.in_flight
                .iter()
                .any(|(t, p)| *t < ticket && p.locks.as_ref() == Some(id))
        });
        let would_run = matches!(pending.injected, None | Some(Injected::FailAfterApply));
        if locked_out && would_run {
            self.truth.lock_conflicts += 1;
            return SalesforceResponse::bad(
                SalesforceErrorCode::UnableToLockRow,
                "unable to obtain exclusive access to this record".to_owned(),
                &[],
            );
        }
        match pending.injected {
            Some(Injected::FailBeforeApply | Injected::EdgeUnavailable) => {
                SalesforceResponse::unavailable()
            }
            Some(Injected::FailAfterApply) => {
                let _applied = self.execute(now_ms, &pending);
                SalesforceResponse::failed_after_applying()
            }
            Some(Injected::Throttle) => unreachable!("throttled requests are answered in begin"),
            None => self.execute(now_ms, &pending),
        }
    }

    fn abort(&mut self, ticket: Ticket) -> bool {
        self.in_flight.remove(ticket).is_some()
    }

    fn in_flight(&self) -> Vec<Ticket> {
        self.in_flight.tickets()
    }

    fn tick(&mut self, now_ms: u64) {
        while self
            .api_window
            .front()
            .is_some_and(|&at| at.saturating_add(DAY_MS) <= now_ms)
        {
            self.api_window.pop_front();
        }
    }

    fn ground_truth(&self) -> &SalesforceGroundTruth {
        &self.truth
    }

    fn dump(&self) -> String {
        let mut out = format!(
            "salesforce: {} records, {} changes, {} api calls, {} in flight, {} sessions issued\n",
            self.truth.records.len(),
            self.truth.history.len(),
            self.truth.api_calls,
            self.in_flight.len(),
            self.sessions.len()
        );
        for r in self.truth.records.values() {
            let fields: Vec<String> = r.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let _ = writeln!(
                out,
                "  {} {} ext={} modified={} {}",
                r.object,
                r.id,
                r.external_id.as_deref().unwrap_or("-"),
                r.last_modified_ms,
                fields.join(" ")
            );
        }
        out
    }
}

#[cfg(test)]
mod tests;
