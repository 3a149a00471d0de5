//! The workload API: declare a saga without editing sagasim.
//!
//! A [`Workload`] is an ordered list of [`Step`]s, each bound to an
//! [`Operation`] on a simulated service (a Stripe charge, a PMS hold, a
//! Salesforce upsert, …) with its kind (compensatable / pivot / retriable),
//! and a rule that turns a caller number into the generic [`SagaInput`]
//! (business key, customer, amount in cents, free params). From the
//! declaration the engine derives:
//!
//! - the saga the reference coordinator runs ([`Workload::definition`]):
//!   which steps have a compensation, and which are swept for late effects;
//! - what every request looks like (the reference glue executes the
//!   operations);
//! - the black-box invariants (`crate::check`): which services hold the
//!   saga's effects, what "done" and "nothing left" mean for each.
//!
//! # The attribution contract
//!
//! The checkers map every service effect to a business key by the label a
//! coordinator puts on it, the way Jepsen asks for unique values:
//!
//! | service | where the business key `K` goes |
//! |---|---|
//! | Stripe PaymentIntent | metadata `business_key = K` (and `step = <step name>` when a workload has more than one Stripe step) |
//! | PMS hold | `client_ref` reading `K` or `saga-K`, optionally followed by `/…` or `#…` |
//! | Salesforce record | external id reading `K` or `saga-K`, optionally followed by `/…` or `#…` |
//!
//! An effect the checkers cannot attribute is a verdict of its own
//! (`attributable`), never silence. The reference coordinator labels with
//! the saga id `saga-K` and keys `saga-K/<step>`.
//!
//! Not here: executing operations (the reference glue, `crate::reference`),
//! judging (`crate::check`), the hotel checkout itself (`crate::workloads`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{json, Value};

use crate::saga::{DefinitionError, SagaDefinition, SagaInput, StepDef, StepKind, SweepPolicy};
use crate::scenario::Scenario;
use crate::services::salesforce::{valid_custom_object, STANDARD_OBJECTS};
use crate::services::user::UserService;

/// Stripe metadata key of the attribution contract: the business key `K`
/// a PaymentIntent belongs to.
pub const META_BUSINESS_KEY: &str = "business_key";
/// Stripe metadata key of the attribution contract: the step that created
/// a PaymentIntent (needed when a workload has more than one Stripe step).
pub const META_STEP: &str = "step";
/// Stripe metadata the reference glue adds: the step's idempotency key
/// (what reconciliation filters the customer's intents by).
pub const META_STEP_KEY: &str = "step_key";
/// Stripe metadata the reference glue adds: the saga id (`saga-K`).
pub const META_SAGA: &str = "saga_id";

/// A value in a request, derived from the saga's input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Field {
    /// A constant string.
    Text(String),
    /// A constant integer.
    Int(i64),
    /// The input's business key.
    BusinessKey,
    /// The input's customer.
    Customer,
    /// The input's amount in cents.
    AmountCents,
    /// Param `name` as a string (empty if unset).
    Param(String),
    /// Param `name` as an integer (0 if unset or not a number).
    ParamInt(String),
    /// A string with `{business_key}`, `{customer}`, `{amount_cents}` and
    /// `{params.NAME}` replaced.
    Template(String),
}

impl Field {
    /// [`Field::Text`] of `s`.
    pub fn text(s: &str) -> Field {
        Field::Text(s.to_string())
    }

    /// A constant: the same whatever the input.
    pub fn literal(&self) -> Option<Value> {
        match self {
            Field::Text(s) => Some(json!(s)),
            Field::Int(n) => Some(json!(n)),
            _ => None,
        }
    }

    /// The value for `input`.
    pub fn resolve(&self, input: &SagaInput) -> Value {
        match self {
            Field::Text(s) => json!(s),
            Field::Int(n) => json!(n),
            Field::BusinessKey => json!(input.business_key),
            Field::Customer => json!(input.customer),
            Field::AmountCents => json!(input.amount_cents),
            Field::Param(p) => json!(input.param(p).unwrap_or_default()),
            Field::ParamInt(p) => json!(param_int(input, p)),
            Field::Template(t) => json!(render(t, input)),
        }
    }

    /// The value for `input` as a string (numbers in decimal).
    pub fn resolve_str(&self, input: &SagaInput) -> String {
        match self.resolve(input) {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }
}

/// `template` with `{business_key}`, `{customer}`, `{amount_cents}` and
/// `{params.NAME}` replaced, in one pass; anything else stays as written.
fn render(template: &str, input: &SagaInput) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            rest = &rest[open..];
            break;
        };
        let name = &after[..close];
        let amount;
        let value = match name {
            "business_key" => Some(input.business_key.as_str()),
            "customer" => Some(input.customer.as_str()),
            "amount_cents" => {
                amount = input.amount_cents.to_string();
                Some(amount.as_str())
            }
            _ => name.strip_prefix("params.").and_then(|p| input.param(p)),
        };
        match value {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[open..open + close + 2]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

fn param_int(input: &SagaInput, name: &str) -> i64 {
    input.param(name).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// One Salesforce record a step writes: an sObject and its fields. The
/// external id is the saga's label (see the attribution contract).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SfRecord {
    /// The sObject: a standard object of the simulated org (`Account`,
    /// `Contact`, `Opportunity`) or a custom one (`Name__c`).
    pub object: String,
    /// Field name to value; the constant ones ([`Field::literal`]) are what
    /// the checkers compare a stored record against.
    pub fields: BTreeMap<String, Field>,
}

impl SfRecord {
    /// A record of `object` with `fields` (a later duplicate field name
    /// replaces an earlier one).
    pub fn new(object: &str, fields: &[(&str, Field)]) -> SfRecord {
        SfRecord {
            object: object.to_string(),
            fields: fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    /// The fields as sent for `input`.
    pub fn resolve(&self, input: &SagaInput) -> BTreeMap<String, Value> {
        self.fields
            .iter()
            .map(|(k, f)| (k.clone(), f.resolve(input)))
            .collect()
    }

    /// The constant fields (what reconciliation and the checkers compare).
    pub fn literals(&self) -> BTreeMap<&str, Value> {
        self.fields
            .iter()
            .filter_map(|(k, v)| v.literal().map(|l| (k.as_str(), l)))
            .collect()
    }

    /// Whether `fields` (a stored record's) carry every constant of this one.
    pub fn matches(&self, fields: &BTreeMap<String, Value>) -> bool {
        self.fields.iter().all(|(k, f)| {
            let stored = fields.get(k);
            match f {
                Field::Text(t) => stored.and_then(Value::as_str) == Some(t.as_str()),
                Field::Int(n) => stored.and_then(Value::as_i64) == Some(*n),
                _ => true,
            }
        })
    }
}

/// Which unit a PMS hold takes, from the input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HoldSpec {
    /// The unit type (a room type; a SKU for stock).
    pub room_type: Field,
    /// The first night held, as a night number (an integer field).
    pub first_night: Field,
    /// How many nights, from `first_night` on (as an integer field).
    pub nights: Field,
}

impl HoldSpec {
    /// From the params `room_type`, `first_night` and `nights`.
    pub fn from_params() -> HoldSpec {
        HoldSpec {
            room_type: Field::Param("room_type".into()),
            first_night: Field::ParamInt("first_night".into()),
            nights: Field::ParamInt("nights".into()),
        }
    }
}

/// The service operation a step performs. Each knows its request, its
/// reconciliation (find the step's live effects by its key) and its undo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Operation {
    /// Stripe: create and confirm a PaymentIntent for the input's amount,
    /// captured at once. Undo: refund what was captured.
    StripeCharge,
    /// Stripe: create and confirm a PaymentIntent with manual capture (an
    /// authorization). Undo: cancel it.
    StripeAuthorize,
    /// Stripe: capture the PaymentIntent step `authorization` created. No
    /// undo.
    StripeCapture {
        /// The name of an earlier [`Operation::StripeAuthorize`] step.
        authorization: String,
    },
    /// PMS: hold one unit (a TTL hold with the step's key as client ref).
    /// Undo: release.
    PmsHold(HoldSpec),
    /// PMS: confirm the hold step `hold` made into a booking. No undo.
    PmsConfirm {
        /// The name of an earlier [`Operation::PmsHold`] step.
        hold: String,
    },
    /// Salesforce: upsert `records` by external id. Undo (if not empty):
    /// upsert `undo`. `create_only`: never update an existing record
    /// (`If-Unmodified-Since` at the epoch), so a late copy of the request
    /// cannot set a later state back.
    SalesforceUpsert {
        /// The records written forward (at least one).
        records: Vec<SfRecord>,
        /// The records written to undo (empty: the step has no undo).
        undo: Vec<SfRecord>,
        /// The forward write never updates a record that exists already
        /// (see above); the undo always may.
        create_only: bool,
    },
    /// A call to a user service (declared with [`Workload::with_service`]).
    ///
    /// The request is JSON: `{"op": action, "key": <step key>,
    /// "business_key", "customer", "amount_cents", "params", "refs"}`; the
    /// service answers `{"status": 2xx, "id": …}` when applied (4xx: refused,
    /// 409/429: retry later, 5xx: unknown). Reconcile sends
    /// `{"op": "find", "key": …}` and expects `{"status": 200, "found":
    /// [ids of live effects]}`; the undo (if any) `{"op": undo, "key":
    /// <undo key>, "action_key": …, "target": <id or null>}`, and must
    /// answer 2xx when there is nothing to undo. Effects must carry the
    /// request's `key` (or the business key) as their label.
    Call {
        /// The user service's name (its node), as given to
        /// [`Workload::with_service`].
        service: String,
        /// The request's `"op"`.
        action: String,
        /// The undo request's `"op"`; `None`: the step has no undo.
        undo: Option<String>,
    },
}

/// Which service an operation talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum ServiceKind {
    /// The simulated Stripe (node `stripe`).
    Stripe,
    /// The simulated Salesforce (node `salesforce`).
    Salesforce,
    /// The simulated PMS (node `inventory`).
    Pms,
    /// A user service, by node name.
    User,
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServiceKind::Stripe => "stripe",
            ServiceKind::Salesforce => "salesforce",
            ServiceKind::Pms => "inventory",
            ServiceKind::User => "user",
        })
    }
}

impl Operation {
    /// The service the operation's requests go to.
    pub fn service(&self) -> ServiceKind {
        match self {
            Operation::StripeCharge
            | Operation::StripeAuthorize
            | Operation::StripeCapture { .. } => ServiceKind::Stripe,
            Operation::PmsHold(_) | Operation::PmsConfirm { .. } => ServiceKind::Pms,
            Operation::SalesforceUpsert { .. } => ServiceKind::Salesforce,
            Operation::Call { .. } => ServiceKind::User,
        }
    }

    /// Whether the operation can be undone.
    pub fn has_undo(&self) -> bool {
        match self {
            Operation::StripeCharge | Operation::StripeAuthorize | Operation::PmsHold(_) => true,
            Operation::SalesforceUpsert { undo, .. } => !undo.is_empty(),
            Operation::Call { undo, .. } => undo.is_some(),
            Operation::StripeCapture { .. } | Operation::PmsConfirm { .. } => false,
        }
    }

    /// The earlier step this one acts on, if any.
    pub fn depends_on(&self) -> Option<&str> {
        match self {
            Operation::StripeCapture { authorization } => Some(authorization),
            Operation::PmsConfirm { hold } => Some(hold),
            _ => None,
        }
    }
}

/// One declared step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Step {
    /// `[a-z0-9_]+`, used in idempotency keys.
    pub name: String,
    /// Where the step stands relative to the pivot.
    pub kind: StepKind,
    /// What the step does, and its undo.
    pub op: Operation,
    /// Override of the derived sweep policy (see [`Workload::definition`]).
    pub sweep: Option<SweepPolicy>,
}

impl Step {
    /// A step before the pivot; compensated by the operation's undo.
    pub fn compensatable(name: &str, op: Operation) -> Step {
        Step::new(name, StepKind::Compensatable, op)
    }

    /// The point of no return.
    pub fn pivot(name: &str, op: Operation) -> Step {
        Step::new(name, StepKind::Pivot, op)
    }

    /// A step after the pivot, retried until it succeeds.
    pub fn retriable(name: &str, op: Operation) -> Step {
        Step::new(name, StepKind::Retriable, op)
    }

    fn new(name: &str, kind: StepKind, op: Operation) -> Step {
        Step {
            name: name.to_string(),
            kind,
            op,
            sweep: None,
        }
    }

    /// The step with its sweep policy set by hand instead of derived (see
    /// [`Workload::definition`]). [`SweepPolicy::Always`] on a step without
    /// a compensation is refused by [`Workload::new`].
    pub fn with_sweep(mut self, sweep: SweepPolicy) -> Step {
        self.sweep = Some(sweep);
        self
    }

    /// Whether the saga undoes this step when it turns back.
    pub fn compensated(&self) -> bool {
        self.kind == StepKind::Compensatable && self.op.has_undo()
    }
}

/// How caller `n` (1-based) of a scenario builds its input.
pub type InputFn = Arc<dyn Fn(&Scenario, u32) -> SagaInput + Send + Sync>;

/// Builds a fresh instance of a user service for each run.
pub type ServiceFactory = Arc<dyn Fn() -> Box<dyn UserService> + Send + Sync>;

/// A user service of a workload: served on its own node `name`, with the
/// scenario's PMS latency and timeout (`latency.inventory`,
/// `timeouts.inventory_ms`), faulted like every other service.
#[derive(Clone)]
pub struct UserServiceSpec {
    /// The service's name, which is also its node's name.
    pub name: String,
    /// Builds the service's state for one run.
    pub make: ServiceFactory,
}

/// Node names a user service may not take.
pub const RESERVED_NODES: &[&str] = &["coordinator", "stripe", "salesforce", "inventory"];

/// Why a declaration is not a workload.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WorkloadError {
    /// The steps do not make a saga (no steps, bad or duplicate names, not
    /// exactly one pivot, a kind on the wrong side of it, …).
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    /// A capture or confirm names no earlier authorize or hold step.
    #[error(
        "step `{step}` acts on `{target}`, which is not an earlier step of the right operation"
    )]
    BadDependency {
        /// The capture or confirm step.
        step: String,
        /// The step name it gave.
        target: String,
    },
    /// A Salesforce upsert with no forward record.
    #[error("step `{step}` writes no Salesforce record")]
    EmptyUpsert {
        /// The upsert step.
        step: String,
    },
    /// A Salesforce record of an object the simulated org cannot hold.
    #[error("step `{step}` writes `{object}`, which is neither a standard object of the simulated org (Account, Contact, Opportunity) nor a custom object name (`Name__c`)")]
    BadObject {
        /// The upsert step.
        step: String,
        /// The object it names.
        object: String,
    },
    /// A user service name that is not `[a-z0-9-]{1,32}`, is taken by a
    /// built-in node or `agent-N`, or is declared twice.
    #[error("service name `{0}` is not valid: use 1 to 32 characters from [a-z0-9-], not a built-in node name nor agent-N")]
    BadServiceName(String),
    /// An [`Operation::Call`] to a service the workload does not declare.
    #[error("step `{step}` calls service `{service}`, which the workload does not declare")]
    UnknownService {
        /// The calling step.
        step: String,
        /// The undeclared service name.
        service: String,
    },
}

/// A declared saga: steps bound to operations, and how callers build their
/// input.
#[derive(Clone)]
pub struct Workload {
    name: String,
    steps: Vec<Step>,
    input: InputFn,
    services: Vec<UserServiceSpec>,
    variant: Option<VariantFn>,
    /// Every member of the family (see [`Workload::with_variants`]).
    members: Vec<Arc<Workload>>,
}

/// Picks the workload a run's scenario asks for (see
/// [`Workload::with_variants`]).
pub type VariantFn = Arc<dyn Fn(&Scenario) -> Arc<Workload> + Send + Sync>;

impl fmt::Debug for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workload")
            .field("name", &self.name)
            .field("steps", &self.steps)
            .field(
                "services",
                &self.services.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Workload {
    /// This workload, standing for a family whose member a run picks from
    /// its scenario (after the seed's workload draw): `pick` maps a
    /// scenario to the member. The bundled hotel checkout picks its
    /// capture mode this way, so a seed that draws manual capture runs the
    /// authorize / capture saga.
    pub fn with_variants(mut self, pick: VariantFn, members: Vec<Arc<Workload>>) -> Workload {
        self.variant = Some(pick);
        self.members = members;
        self
    }

    /// Every workload a run of this one may run: the family's members
    /// (what the coverage catalogue is generated from), or itself.
    pub fn family(&self) -> Vec<&Workload> {
        if self.members.is_empty() {
            vec![self]
        } else {
            self.members.iter().map(|m| m.as_ref()).collect()
        }
    }

    /// The member of this workload's family scenario `s` runs (itself, for
    /// a workload without variants).
    pub fn for_scenario(self: &Arc<Self>, s: &Scenario) -> Arc<Workload> {
        match &self.variant {
            Some(pick) => pick(s),
            None => self.clone(),
        }
    }
}

impl Workload {
    /// Validates the declaration: the step kinds make a saga (exactly one
    /// pivot, compensatable steps before it, retriable after), every
    /// capture or confirm acts on an earlier authorize or hold, every
    /// Salesforce upsert writes at least one record of a valid object.
    /// `input` builds what caller `n` (1-based) asks for.
    ///
    /// A user service a step calls is added afterwards with
    /// [`Workload::with_service`], then checked with
    /// [`Workload::validate_services`].
    ///
    /// ```rust
    /// use std::sync::Arc;
    ///
    /// use sagasim::saga::SagaInput;
    /// use sagasim::scenario::Scenario;
    /// use sagasim::workload::{HoldSpec, Operation, Step, Workload, WorkloadError};
    ///
    /// // Hold a room, charge the card, then confirm the hold: the point of
    /// // no return. A failure before it releases the hold and refunds.
    /// let steps = vec![
    ///     Step::compensatable("hold_room", Operation::PmsHold(HoldSpec::from_params())),
    ///     Step::compensatable("charge", Operation::StripeCharge),
    ///     Step::pivot("confirm_room", Operation::PmsConfirm { hold: "hold_room".into() }),
    /// ];
    /// // Caller n books one night of the scenario's room type, at its price.
    /// let input = Arc::new(|s: &Scenario, n: u32| {
    ///     let (key, customer) = (Scenario::business_key(n), Scenario::customer(n));
    ///     SagaInput::new(&key, &customer, s.workload.price_cents)
    ///         .with_param("room_type", &s.workload.room_type)
    ///         .with_param("first_night", s.workload.first_night)
    ///         .with_param("nights", 1)
    /// });
    /// let workload = Workload::new("book_a_room", steps, input.clone())?;
    /// assert!(workload.step("hold_room").is_some_and(|s| s.compensated()));
    ///
    /// // A confirm must name an earlier hold step.
    /// let confirm = Operation::PmsConfirm { hold: "nope".into() };
    /// let orphan = vec![Step::pivot("confirm_room", confirm)];
    /// assert!(matches!(
    ///     Workload::new("broken", orphan, input),
    ///     Err(WorkloadError::BadDependency { .. })
    /// ));
    /// # Ok::<(), WorkloadError>(())
    /// ```
    pub fn new(name: &str, steps: Vec<Step>, input: InputFn) -> Result<Workload, WorkloadError> {
        let w = Workload {
            name: name.to_string(),
            steps,
            input,
            services: Vec::new(),
            variant: None,
            members: Vec::new(),
        };
        w.definition(true)?;
        for (i, step) in w.steps.iter().enumerate() {
            if let Operation::SalesforceUpsert { records, undo, .. } = &step.op {
                if records.is_empty() {
                    return Err(WorkloadError::EmptyUpsert {
                        step: step.name.clone(),
                    });
                }
                for r in records.iter().chain(undo) {
                    let standard = STANDARD_OBJECTS.iter().any(|(n, ..)| *n == r.object);
                    if !standard && !valid_custom_object(&r.object) {
                        return Err(WorkloadError::BadObject {
                            step: step.name.clone(),
                            object: r.object.clone(),
                        });
                    }
                }
            }
            let Some(target) = step.op.depends_on() else {
                continue;
            };
            let ok = w.steps[..i].iter().any(|t| {
                t.name == target
                    && matches!(
                        (&step.op, &t.op),
                        (Operation::StripeCapture { .. }, Operation::StripeAuthorize)
                            | (Operation::PmsConfirm { .. }, Operation::PmsHold(_))
                    )
            });
            if !ok {
                return Err(WorkloadError::BadDependency {
                    step: step.name.clone(),
                    target: target.to_string(),
                });
            }
        }
        Ok(w)
    }

    /// The same workload with a user service `name` (a fresh instance of
    /// `make()` per run). Every `Operation::Call` must name a declared
    /// service; [`Workload::validate_services`] checks it once all are
    /// added.
    pub fn with_service(
        mut self,
        name: &str,
        make: impl Fn() -> Box<dyn UserService> + Send + Sync + 'static,
    ) -> Result<Workload, WorkloadError> {
        let ok = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !RESERVED_NODES.contains(&name)
            && !name.starts_with("agent-")
            && self.services.iter().all(|s| s.name != name);
        if !ok {
            return Err(WorkloadError::BadServiceName(name.to_string()));
        }
        self.services.push(UserServiceSpec {
            name: name.to_string(),
            make: Arc::new(make),
        });
        Ok(self)
    }

    /// Every `Operation::Call` names a declared user service.
    pub fn validate_services(&self) -> Result<(), WorkloadError> {
        for step in &self.steps {
            if let Operation::Call { service, .. } = &step.op {
                if !self.services.iter().any(|s| &s.name == service) {
                    return Err(WorkloadError::UnknownService {
                        step: step.name.clone(),
                        service: service.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The user services, in declaration order.
    pub fn services(&self) -> &[UserServiceSpec] {
        &self.services
    }

    /// The workload's name (regressions and replay handles carry it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The declared steps, in saga order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// The step named `name`, if declared.
    pub fn step(&self, name: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.name == name)
    }

    /// What caller `n` asks for in `scenario`.
    pub fn input(&self, scenario: &Scenario, n: u32) -> SagaInput {
        (self.input)(scenario, n)
    }

    /// The saga the reference coordinator runs. A compensatable step with
    /// an undo is swept when it did not end applied: Stripe, Salesforce and
    /// a PMS that honours client refs each forget a request they refused (a
    /// 429 charge, a locked-row upsert, a 409 hold), so a late copy of it
    /// can still land (regression `rejected-hold-duplicated-later`). A PMS
    /// hold is always swept when the PMS ignores client refs
    /// (`pms_deduplicates == false`): one send delivered twice holds twice.
    pub fn definition(&self, pms_deduplicates: bool) -> Result<SagaDefinition, DefinitionError> {
        self.definition_with(pms_deduplicates, true)
    }

    /// [`Workload::definition`], also for an org that may not deduplicate
    /// CRM writes by external id (`crm_deduplicates == false`: others
    /// delete records, `salesforce.others_delete_records`): a Salesforce
    /// step with an undo is then always swept, since a network copy of
    /// its write that lands after an admin deleted the record creates a
    /// new one (regression `crm-admin-deletes-1641`).
    pub fn definition_with(
        &self,
        pms_deduplicates: bool,
        crm_deduplicates: bool,
    ) -> Result<SagaDefinition, DefinitionError> {
        let steps = self
            .steps
            .iter()
            .map(|s| {
                let derived = match (&s.op, s.compensated()) {
                    (Operation::PmsHold(_), true) if !pms_deduplicates => SweepPolicy::Always,
                    (Operation::SalesforceUpsert { .. }, true) if !crm_deduplicates => {
                        SweepPolicy::Always
                    }
                    (_, true) => SweepPolicy::UnlessApplied,
                    (_, false) => SweepPolicy::WhenAmbiguous,
                };
                StepDef {
                    name: s.name.clone(),
                    kind: s.kind,
                    compensation: s.compensated(),
                    sweep: s.sweep.unwrap_or(derived),
                }
            })
            .collect();
        SagaDefinition::new(&self.name, steps)
    }

    /// The Stripe steps that create a PaymentIntent.
    pub fn payment_steps(&self) -> impl Iterator<Item = &Step> {
        self.steps
            .iter()
            .filter(|s| matches!(s.op, Operation::StripeCharge | Operation::StripeAuthorize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> SagaInput {
        SagaInput::new("res-1", "cust-1", 2500)
            .with_param("room_type", "double")
            .with_param("nights", 3)
    }

    #[test]
    fn fields_resolve_from_the_input() {
        let i = input();
        assert_eq!(Field::BusinessKey.resolve(&i), json!("res-1"));
        assert_eq!(Field::AmountCents.resolve(&i), json!(2500));
        assert_eq!(Field::ParamInt("nights".into()).resolve(&i), json!(3));
        assert_eq!(Field::ParamInt("missing".into()).resolve(&i), json!(0));
        assert_eq!(
            Field::Template("Stay {business_key} in {params.room_type}".into()).resolve(&i),
            json!("Stay res-1 in double")
        );
        assert_eq!(
            Field::Template("{unknown} {amount_cents} {params.nope} {".into()).resolve(&i),
            json!("{unknown} 2500 {params.nope} {")
        );
        assert_eq!(Field::Int(7).literal(), Some(json!(7)));
        assert_eq!(Field::Customer.literal(), None);
    }

    fn any_input() -> InputFn {
        Arc::new(|_, n| SagaInput::new(&format!("k-{n}"), "c", 1))
    }

    #[test]
    fn dependencies_must_name_an_earlier_step_of_the_right_operation() {
        let steps = vec![
            Step::compensatable("hold", Operation::PmsHold(HoldSpec::from_params())),
            Step::pivot(
                "capture",
                Operation::StripeCapture {
                    authorization: "hold".into(),
                },
            ),
        ];
        let err = Workload::new("w", steps, any_input()).unwrap_err();
        assert_eq!(
            err,
            WorkloadError::BadDependency {
                step: "capture".into(),
                target: "hold".into()
            }
        );
        let steps = vec![
            Step::compensatable("auth", Operation::StripeAuthorize),
            Step::pivot(
                "capture",
                Operation::StripeCapture {
                    authorization: "auth".into(),
                },
            ),
        ];
        assert!(Workload::new("w", steps, any_input()).is_ok());
    }

    #[test]
    fn the_definition_derives_compensations_and_sweeps_from_the_bindings() {
        let upsert = |undo: bool| Operation::SalesforceUpsert {
            records: vec![SfRecord::new(
                "Order__c",
                &[("Status__c", Field::text("Open"))],
            )],
            undo: if undo {
                vec![SfRecord::new(
                    "Order__c",
                    &[("Status__c", Field::text("Cancelled"))],
                )]
            } else {
                vec![]
            },
            create_only: false,
        };
        let steps = vec![
            Step::compensatable("hold", Operation::PmsHold(HoldSpec::from_params())),
            Step::compensatable("note", upsert(false)),
            Step::compensatable("record", upsert(true)),
            Step::pivot("charge", Operation::StripeCharge),
        ];
        let w = Workload::new("w", steps, any_input()).unwrap();
        let d = w.definition(false).unwrap();
        assert_eq!(d.step(0).sweep, SweepPolicy::Always);
        assert!(d.step(0).compensation);
        assert!(!d.step(1).compensation);
        assert_eq!(d.step(1).sweep, SweepPolicy::WhenAmbiguous);
        assert_eq!(d.step(2).sweep, SweepPolicy::UnlessApplied);
        // A charge as the pivot has no compensation.
        assert!(!d.step(3).compensation);
        assert_eq!(
            w.definition(true).unwrap().step(0).sweep,
            SweepPolicy::UnlessApplied
        );
        // An org whose records others delete does not deduplicate by
        // external id: its writes with an undo are always swept; a write
        // without one, and the PMS, are as before.
        let d = w.definition_with(true, false).unwrap();
        assert_eq!(d.step(0).sweep, SweepPolicy::UnlessApplied);
        assert_eq!(d.step(1).sweep, SweepPolicy::WhenAmbiguous);
        assert_eq!(d.step(2).sweep, SweepPolicy::Always);
    }

    #[test]
    fn records_match_on_their_constants_only() {
        let r = SfRecord::new(
            "Booking__c",
            &[
                ("Status__c", Field::text("Pending")),
                ("Customer__c", Field::Customer),
            ],
        );
        let stored: BTreeMap<String, Value> = [
            ("Status__c".to_string(), json!("Pending")),
            ("Customer__c".to_string(), json!("someone")),
        ]
        .into();
        assert!(r.matches(&stored));
        let other: BTreeMap<String, Value> = [("Status__c".to_string(), json!("Done"))].into();
        assert!(!r.matches(&other));
    }
}
