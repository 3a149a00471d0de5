//! What a saga *is*: an ordered list of steps, the checkout request that
//! feeds them, and the deterministic names (saga id, idempotency keys) that
//! tie every service call to its step.
//!
//! Not here: how a step talks to a service (the glue maps a
//! [`StepCall`](super::StepCall) to a request), and what happens at run time
//! (the coordinator).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

/// Most steps a definition may have (a limit on everything).
pub const STEPS_MAX: usize = 32;
/// Longest step name. Step names end up in idempotency keys.
pub const STEP_NAME_LEN_MAX: usize = 48;
/// Longest business key. Keeps every idempotency key well under Stripe's
/// 255-character limit.
pub const BUSINESS_KEY_LEN_MAX: usize = 64;
/// Longest customer id and param value.
pub const FIELD_LEN_MAX: usize = 128;
/// Most params an input may carry.
pub const PARAMS_MAX: usize = 16;
/// Largest amount a checkout may charge: $1,000,000.00.
pub const AMOUNT_CENTS_MAX: i64 = 100_000_000;

/// Where a step sits relative to the point of no return.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Before the pivot: may be undone by its compensation if the saga fails.
    Compensatable,
    /// The point of no return: once it is applied the saga only goes forward.
    /// Exactly one per saga, no compensation.
    Pivot,
    /// After the pivot: retried until it succeeds or the attempt limit ends
    /// the saga in `NeedsOperator`. Never compensated.
    Retriable,
}

/// Whether the coordinator re-checks a step for late or duplicate effects
/// before it finalizes the saga (see the *sweep* in the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SweepPolicy {
    /// Sweep only if the step's action was ambiguous: ever `Unknown`, sent
    /// more than once, or in flight at a crash. Right for services that
    /// deduplicate by idempotency key or external id.
    WhenAmbiguous,
    /// Sweep if the action was ambiguous *or did not end applied*: for
    /// services that deduplicate only the requests they applied. A PMS that
    /// honours client refs, or Stripe for a 429 (not stored under the key),
    /// forgets a *rejected* request, so a copy of it delivered later can
    /// still take effect after the saga gave the step up.
    UnlessApplied,
    /// Always sweep (once the step was attempted): for services that do not
    /// deduplicate, where even one send may be delivered twice by the network
    /// — the PMS `hold` when it ignores client references.
    Always,
}

/// One step of a saga.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepDef {
    /// Stable name, `[a-z0-9_]+`: used in idempotency keys and by the glue to
    /// pick the service call.
    pub name: String,
    /// Before, at or after the pivot.
    pub kind: StepKind,
    /// Whether the step has a compensation (an undo the glue can perform).
    pub compensation: bool,
    /// When the sweep re-checks this step; `Always` needs a compensation.
    pub sweep: SweepPolicy,
}

impl StepDef {
    /// A step before the pivot, with a compensation.
    pub fn compensatable(name: &str) -> StepDef {
        StepDef {
            name: name.to_string(),
            kind: StepKind::Compensatable,
            compensation: true,
            sweep: SweepPolicy::WhenAmbiguous,
        }
    }

    /// The pivot step.
    pub fn pivot(name: &str) -> StepDef {
        StepDef {
            name: name.to_string(),
            kind: StepKind::Pivot,
            compensation: false,
            sweep: SweepPolicy::WhenAmbiguous,
        }
    }

    /// A step after the pivot.
    pub fn retriable(name: &str) -> StepDef {
        StepDef {
            name: name.to_string(),
            kind: StepKind::Retriable,
            compensation: false,
            sweep: SweepPolicy::WhenAmbiguous,
        }
    }

    /// This step has nothing to undo (a compensatable step without a
    /// compensation, e.g. a validation).
    pub fn without_compensation(mut self) -> StepDef {
        self.compensation = false;
        self
    }

    /// This step with sweep policy `sweep` (the constructors set
    /// `WhenAmbiguous`).
    pub fn with_sweep(mut self, sweep: SweepPolicy) -> StepDef {
        self.sweep = sweep;
        self
    }
}

/// Why a list of steps is not a saga.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    /// No steps at all.
    #[error("saga definition `{saga}` has no steps")]
    Empty {
        /// The definition's name.
        saga: String,
    },
    /// More than `STEPS_MAX` steps.
    #[error("saga definition `{saga}` has {count} steps; the limit is {STEPS_MAX}")]
    TooManySteps {
        /// The definition's name.
        saga: String,
        /// How many steps it has.
        count: usize,
    },
    /// A step name is empty, longer than `STEP_NAME_LEN_MAX` or not
    /// `[a-z0-9_]+`.
    #[error(
        "step name `{name}` is not valid: use 1 to {STEP_NAME_LEN_MAX} characters from [a-z0-9_]"
    )]
    BadStepName {
        /// The offending name.
        name: String,
    },
    /// Two steps share a name (their keys would collide).
    #[error("step name `{name}` is used by two steps")]
    DuplicateStep {
        /// The shared name.
        name: String,
    },
    /// No step is the pivot.
    #[error("saga definition `{saga}` has no pivot step; it needs exactly one")]
    NoPivot {
        /// The definition's name.
        saga: String,
    },
    /// More than one step is a pivot; the first two are named.
    #[error("steps `{first}` and `{second}` are both pivots; a saga has exactly one")]
    MultiplePivots {
        /// The first pivot.
        first: String,
        /// The second pivot.
        second: String,
    },
    /// A compensatable step after the pivot.
    #[error("compensatable step `{step}` comes after the pivot `{pivot}`")]
    CompensatableAfterPivot {
        /// The misplaced step.
        step: String,
        /// The pivot's name.
        pivot: String,
    },
    /// A retriable step before the pivot.
    #[error("retriable step `{step}` comes before the pivot `{pivot}`")]
    RetriableBeforePivot {
        /// The misplaced step.
        step: String,
        /// The pivot's name.
        pivot: String,
    },
    /// The pivot has `compensation: true`.
    #[error("pivot step `{step}` declares a compensation; the pivot is the point of no return")]
    PivotWithCompensation {
        /// The pivot's name.
        step: String,
    },
    /// A retriable step has `compensation: true`.
    #[error("retriable step `{step}` declares a compensation, which would never run")]
    RetriableWithCompensation {
        /// The step's name.
        step: String,
    },
    /// A step with [`SweepPolicy::Always`] and no compensation.
    #[error("step `{step}` is always swept but has no compensation to undo what the sweep finds")]
    SweepWithoutCompensation {
        /// The step's name.
        step: String,
    },
}

/// A validated saga: ordered steps, exactly one pivot, compensatable steps
/// only before it and retriable steps only after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SagaDefinition {
    name: String,
    steps: Vec<StepDef>,
    pivot: usize,
}

impl SagaDefinition {
    /// Validates `steps` and builds the definition.
    pub fn new(name: &str, steps: Vec<StepDef>) -> Result<SagaDefinition, DefinitionError> {
        let saga = name.to_string();
        if steps.is_empty() {
            return Err(DefinitionError::Empty { saga });
        }
        if steps.len() > STEPS_MAX {
            return Err(DefinitionError::TooManySteps {
                saga,
                count: steps.len(),
            });
        }
        let mut names = BTreeSet::new();
        for step in &steps {
            if !valid_step_name(&step.name) {
                return Err(DefinitionError::BadStepName {
                    name: step.name.clone(),
                });
            }
            if !names.insert(step.name.as_str()) {
                return Err(DefinitionError::DuplicateStep {
                    name: step.name.clone(),
                });
            }
        }
        let pivots: Vec<usize> = (0..steps.len())
            .filter(|&i| steps[i].kind == StepKind::Pivot)
            .collect();
        let pivot = match pivots.as_slice() {
            [] => return Err(DefinitionError::NoPivot { saga }),
            [one] => *one,
            [first, second, ..] => {
                return Err(DefinitionError::MultiplePivots {
                    first: steps[*first].name.clone(),
                    second: steps[*second].name.clone(),
                })
            }
        };
        let pivot_name = steps[pivot].name.clone();
        for (i, step) in steps.iter().enumerate() {
            let name = step.name.clone();
            match step.kind {
                StepKind::Compensatable if i > pivot => {
                    return Err(DefinitionError::CompensatableAfterPivot {
                        step: name,
                        pivot: pivot_name,
                    })
                }
                StepKind::Retriable if i < pivot => {
                    return Err(DefinitionError::RetriableBeforePivot {
                        step: name,
                        pivot: pivot_name,
                    })
                }
                StepKind::Pivot if step.compensation => {
                    return Err(DefinitionError::PivotWithCompensation { step: name })
                }
                StepKind::Retriable if step.compensation => {
                    return Err(DefinitionError::RetriableWithCompensation { step: name })
                }
                _ => {}
            }
            if step.sweep == SweepPolicy::Always && !step.compensation {
                return Err(DefinitionError::SweepWithoutCompensation { step: name });
            }
        }
        let definition = SagaDefinition {
            name: saga,
            steps,
            pivot,
        };
        assert_eq!(definition.steps[definition.pivot].kind, StepKind::Pivot);
        Ok(definition)
    }

    /// The definition's name (for messages; not part of any key).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[StepDef] {
        &self.steps
    }

    /// Panics if `index` is out of range (a programming error).
    pub fn step(&self, index: usize) -> &StepDef {
        &self.steps[index]
    }

    /// Number of steps (at least 1).
    pub fn step_count(&self) -> usize {
        self.steps.len()
    }

    /// Index of the pivot step.
    pub fn pivot(&self) -> usize {
        self.pivot
    }

    /// Index of the step named `name`, if there is one.
    pub fn step_index(&self, name: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.name == name)
    }
}

fn valid_step_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= STEP_NAME_LEN_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// What a caller asks a saga to do: the generic input every workload's
/// requests are derived from. `business_key` makes the start idempotent:
/// the same key always means the same saga.
///
/// `params` are the workload's free parameters (the hotel checkout's
/// `room_type`, `first_night`, `nights`; an order flow's `sku`, `quantity`),
/// sorted by name so that the input has one encoding.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SagaInput {
    /// 1 to `BUSINESS_KEY_LEN_MAX` characters from `[A-Za-z0-9._:-]`;
    /// the saga id and every key derive from it.
    pub business_key: String,
    /// The customer id: 1 to `FIELD_LEN_MAX` printable characters.
    pub customer: String,
    /// The amount to charge, in cents: 1 to `AMOUNT_CENTS_MAX`.
    pub amount_cents: i64,
    /// At most `PARAMS_MAX`; names `[a-z0-9_]+`, values printable.
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    /// What a capture step takes of the authorized `amount_cents` when the
    /// final bill is lower (a partial capture: Stripe releases the rest);
    /// `None`: all of it. 1 to `amount_cents`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_cents: Option<i64>,
}

/// Why a saga request is refused before any saga exists.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// The business key (its first 80 characters) is empty, too long or
    /// has a character outside `[A-Za-z0-9._:-]`.
    #[error(
        "business_key must be 1 to {BUSINESS_KEY_LEN_MAX} characters from [A-Za-z0-9._:-], got {0:?}"
    )]
    BadBusinessKey(String),
    /// The customer or a param value is empty, too long or has a control
    /// character.
    #[error("{field} must be 1 to {FIELD_LEN_MAX} printable characters")]
    BadField {
        /// `customer` or `params.{name}`.
        field: String,
    },
    /// The amount in cents is not in 1 ..= `AMOUNT_CENTS_MAX`.
    #[error("amount_cents must be 1 to {AMOUNT_CENTS_MAX}, got {0}")]
    BadAmount(i64),
    /// More than `PARAMS_MAX` params.
    #[error("at most {PARAMS_MAX} params, got {0}")]
    TooManyParams(usize),
    /// `capture_cents` is not 1 to `amount_cents`.
    #[error("capture_cents must be 1 to amount_cents ({amount_cents}), got {capture_cents}")]
    BadCapture {
        /// The capture asked for.
        capture_cents: i64,
        /// The amount authorized.
        amount_cents: i64,
    },
    /// A param name (its first 80 characters) is not 1 to
    /// `STEP_NAME_LEN_MAX` characters from `[a-z0-9_]`.
    #[error(
        "param name {0:?} is not valid: use 1 to {STEP_NAME_LEN_MAX} characters from [a-z0-9_]"
    )]
    BadParamName(String),
}

/// As derived, without `capture_cents` when it is `None` (traces of runs
/// without partial captures read as they did before it existed).
impl std::fmt::Debug for SagaInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("SagaInput");
        d.field("business_key", &self.business_key)
            .field("customer", &self.customer)
            .field("amount_cents", &self.amount_cents)
            .field("params", &self.params);
        if let Some(c) = self.capture_cents {
            d.field("capture_cents", &c);
        }
        d.finish()
    }
}

impl SagaInput {
    /// An input without params.
    pub fn new(business_key: &str, customer: &str, amount_cents: i64) -> SagaInput {
        SagaInput {
            business_key: business_key.to_string(),
            customer: customer.to_string(),
            amount_cents,
            params: BTreeMap::new(),
            capture_cents: None,
        }
    }

    /// The same input capturing only `cents` of its amount (see
    /// [`SagaInput::capture_cents`]).
    pub fn with_capture(mut self, cents: i64) -> SagaInput {
        self.capture_cents = Some(cents);
        self
    }

    /// What the saga takes in the end: `capture_cents`, or the amount.
    pub fn due_cents(&self) -> i64 {
        self.capture_cents.unwrap_or(self.amount_cents)
    }

    /// The same input with param `name` set to `value`.
    pub fn with_param(mut self, name: &str, value: impl ToString) -> SagaInput {
        self.params.insert(name.to_string(), value.to_string());
        self
    }

    /// Param `name`, if set.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Checks the request against the input limits.
    pub fn validate(&self) -> Result<(), InputError> {
        let key = &self.business_key;
        let key_ok = !key.is_empty()
            && key.len() <= BUSINESS_KEY_LEN_MAX
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        if !key_ok {
            return Err(InputError::BadBusinessKey(truncate(key, 80)));
        }
        let printable = |value: &str| {
            !value.is_empty()
                && value.len() <= FIELD_LEN_MAX
                && !value.chars().any(char::is_control)
        };
        if !printable(&self.customer) {
            return Err(InputError::BadField {
                field: "customer".into(),
            });
        }
        if self.amount_cents <= 0 || self.amount_cents > AMOUNT_CENTS_MAX {
            return Err(InputError::BadAmount(self.amount_cents));
        }
        if let Some(c) = self.capture_cents {
            if c <= 0 || c > self.amount_cents {
                return Err(InputError::BadCapture {
                    capture_cents: c,
                    amount_cents: self.amount_cents,
                });
            }
        }
        if self.params.len() > PARAMS_MAX {
            return Err(InputError::TooManyParams(self.params.len()));
        }
        for (name, value) in &self.params {
            if !valid_step_name(name) {
                return Err(InputError::BadParamName(truncate(name, 80)));
            }
            if !printable(value) {
                return Err(InputError::BadField {
                    field: format!("params.{name}"),
                });
            }
        }
        Ok(())
    }
}

fn truncate(s: &str, chars: usize) -> String {
    s.chars().take(chars).collect()
}

/// A saga's id, derived from the business key alone (`saga-{business_key}`),
/// so that a retried start, a crash and a recovery all name the same saga.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SagaId(String);

impl SagaId {
    /// `saga-{business_key}`.
    pub fn for_business_key(business_key: &str) -> SagaId {
        SagaId(format!("saga-{business_key}"))
    }

    /// An id outside the `saga-{business_key}` scheme (mutation tests only).
    #[doc(hidden)]
    pub fn mutant(id: String) -> SagaId {
        SagaId(id)
    }

    /// The id as text, e.g. `saga-order-42`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The business key this id was derived from.
    pub fn business_key(&self) -> &str {
        self.0.strip_prefix("saga-").unwrap_or(&self.0)
    }
}

impl fmt::Display for SagaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Idempotency key of a step's action: `{saga_id}/{step}`. Stable across
/// retries, crashes and recoveries — it never contains the attempt number.
pub fn action_key(saga: &SagaId, step_name: &str) -> String {
    format!("{saga}/{step_name}")
}

/// Idempotency key of a compensation.
///
/// - `None`: the step's own compensation, `{saga_id}/{step}/undo`;
/// - `Some(reference)`: the sweep undoing one specific late or duplicate
///   effect, `{saga_id}/{step}/undo/{reference}`. The reference is part of
///   the key because two refunds of two different duplicate charges under
///   one Stripe key would be one refund (the second replays the first).
pub fn undo_key(saga: &SagaId, step_name: &str, reference: Option<&str>) -> String {
    match reference {
        None => format!("{saga}/{step_name}/undo"),
        Some(r) => format!("{saga}/{step_name}/undo/{r}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_definitions_are_refused_with_a_typed_error() {
        let c = StepDef::compensatable;
        let p = StepDef::pivot;
        let r = StepDef::retriable;
        let cases: Vec<(Vec<StepDef>, DefinitionError)> = vec![
            (vec![], DefinitionError::Empty { saga: "t".into() }),
            (
                vec![c("a"), r("b")],
                DefinitionError::NoPivot { saga: "t".into() },
            ),
            (
                vec![p("a"), p("b")],
                DefinitionError::MultiplePivots {
                    first: "a".into(),
                    second: "b".into(),
                },
            ),
            (
                vec![p("a"), c("b")],
                DefinitionError::CompensatableAfterPivot {
                    step: "b".into(),
                    pivot: "a".into(),
                },
            ),
            (
                vec![r("a"), p("b")],
                DefinitionError::RetriableBeforePivot {
                    step: "a".into(),
                    pivot: "b".into(),
                },
            ),
            (
                vec![c("a"), c("a"), p("b")],
                DefinitionError::DuplicateStep { name: "a".into() },
            ),
            (
                vec![c("A b"), p("b")],
                DefinitionError::BadStepName { name: "A b".into() },
            ),
            (
                vec![StepDef {
                    compensation: true,
                    ..p("a")
                }],
                DefinitionError::PivotWithCompensation { step: "a".into() },
            ),
            (
                vec![
                    p("a"),
                    StepDef {
                        compensation: true,
                        ..r("b")
                    },
                ],
                DefinitionError::RetriableWithCompensation { step: "b".into() },
            ),
            (
                vec![
                    c("a")
                        .without_compensation()
                        .with_sweep(SweepPolicy::Always),
                    p("b"),
                ],
                DefinitionError::SweepWithoutCompensation { step: "a".into() },
            ),
            (
                (0..=STEPS_MAX).map(|i| c(&format!("s{i}"))).collect(),
                DefinitionError::TooManySteps {
                    saga: "t".into(),
                    count: STEPS_MAX + 1,
                },
            ),
        ];
        for (steps, want) in cases {
            assert_eq!(SagaDefinition::new("t", steps), Err(want.clone()));
            assert!(!want.to_string().is_empty());
        }
        assert!(SagaDefinition::new("t", vec![p("only")]).is_ok());
    }

    #[test]
    fn keys_are_derived_from_the_business_key_and_step_only() {
        let id = SagaId::for_business_key("res-42");
        assert_eq!(id.as_str(), "saga-res-42");
        assert_eq!(id.business_key(), "res-42");
        assert_eq!(action_key(&id, "charge"), "saga-res-42/charge");
        assert_eq!(undo_key(&id, "charge", None), "saga-res-42/charge/undo");
        assert_eq!(
            undo_key(&id, "hold_room", Some("h-7")),
            "saga-res-42/hold_room/undo/h-7"
        );
    }

    fn input(key: &str) -> SagaInput {
        SagaInput::new(key, "cus_1", 25_000).with_param("room_type", "double")
    }

    #[test]
    fn input_validation_names_the_bad_field() {
        assert_eq!(input("res-1").validate(), Ok(()));
        let bad_key = input("res/1").validate().unwrap_err();
        assert!(matches!(bad_key, InputError::BadBusinessKey(_)));
        assert!(input(&"k".repeat(BUSINESS_KEY_LEN_MAX + 1))
            .validate()
            .is_err());
        assert!(input("").validate().is_err());
        let mut i = input("res-1");
        i.customer = String::new();
        assert_eq!(
            i.validate(),
            Err(InputError::BadField {
                field: "customer".into()
            })
        );
        let i = input("res-1").with_param("room_type", "a\nb");
        assert_eq!(
            i.validate(),
            Err(InputError::BadField {
                field: "params.room_type".into()
            })
        );
        let i = input("res-1").with_param("Room", "x");
        assert!(matches!(i.validate(), Err(InputError::BadParamName(_))));
        let mut i = input("res-1");
        for n in 0..PARAMS_MAX {
            i = i.with_param(&format!("p{n}"), n);
        }
        assert_eq!(i.validate(), Err(InputError::TooManyParams(PARAMS_MAX + 1)));
        let mut i = input("res-1");
        i.amount_cents = 0;
        assert_eq!(i.validate(), Err(InputError::BadAmount(0)));
        i.amount_cents = AMOUNT_CENTS_MAX + 1;
        assert!(i.validate().is_err());
    }
}
