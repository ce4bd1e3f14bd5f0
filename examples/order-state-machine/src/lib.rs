//! `order-state-machine`: follows every order through `created → paid → shipped →
//! delivered`, with `cancelled` reachable from any state that is not final.
//!
//! Input: key = the order id; value = `{"order":"o1","event":"create"}` with event one of
//! `create`, `pay`, `ship`, `deliver`, `cancel`. Output, keyed by the order id:
//! - a valid transition emits the new status: `{"order":"o1","status":"paid"}`;
//! - an invalid one emits an alert and leaves the state as it was:
//!   `{"order":"o1","alert":"invalid transition shipped -> pay"}` (`none` when the order has
//!   no state).
//!
//! A final state (`delivered`, `cancelled`) clears the order's state, so a later `create` for
//! the same id starts over. A value that is not such JSON, or whose `order` differs from the
//! record key, is an error: the host dead-letters that record.

use eddy_sdk::{Codec, Context, Error, Operator, Record, StateRegistry, ValueState};
use serde::{Deserialize, Serialize};

/// Where an order is. Stored as JSON (`"paid"`), so that `eddy savepoint dump` shows it
/// and `bootstrap` can set it: variants may be added anywhere; renaming one needs a schema
/// version bump and a `migrate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrderStatus {
    /// Created, not paid yet.
    Created,
    /// Paid, not shipped yet.
    Paid,
    /// On its way.
    Shipped,
    /// Final: delivered.
    Delivered,
    /// Final: cancelled.
    Cancelled,
}

impl OrderStatus {
    fn name(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Paid => "paid",
            Self::Shipped => "shipped",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Cancelled)
    }
}

/// What happened to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrderEvent {
    /// The order was placed.
    Create,
    /// It was paid.
    Pay,
    /// It was shipped.
    Ship,
    /// It arrived.
    Deliver,
    /// It was called off.
    Cancel,
}

impl OrderEvent {
    fn name(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::Pay => "pay",
            Self::Ship => "ship",
            Self::Deliver => "deliver",
            Self::Cancel => "cancel",
        }
    }
}

/// The status after `event`, or `None` when `event` is not allowed from `current`.
pub fn transition(current: Option<OrderStatus>, event: OrderEvent) -> Option<OrderStatus> {
    use OrderEvent as E;
    use OrderStatus as S;
    match (current, event) {
        (None, E::Create) => Some(S::Created),
        (Some(S::Created), E::Pay) => Some(S::Paid),
        (Some(S::Paid), E::Ship) => Some(S::Shipped),
        (Some(S::Shipped), E::Deliver) => Some(S::Delivered),
        (Some(S::Created | S::Paid | S::Shipped), E::Cancel) => Some(S::Cancelled),
        _ => None,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Input {
    order: String,
    event: OrderEvent,
}

#[derive(Serialize)]
struct StatusChanged<'a> {
    order: &'a str,
    status: OrderStatus,
}

#[derive(Serialize)]
struct Alert<'a> {
    order: &'a str,
    alert: String,
}

/// The order state machine.
pub struct OrderStateMachine {
    status: ValueState<OrderStatus>,
}

impl Operator for OrderStateMachine {
    const NAME: &'static str = "order-state-machine";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    fn open(states: &mut StateRegistry) -> Self {
        Self {
            status: states.declare("status").codec(Codec::Json).value(),
        }
    }

    fn process(&mut self, ctx: &mut Context<'_>, record: &Record<'_>) -> Result<(), Error> {
        let input: Input = serde_json::from_slice(record.value())?;
        if input.order.as_bytes() != record.key() {
            return Err(Error::failed(format!(
                "order {:?} does not match the record key {:?}; key the stream by order id",
                input.order,
                String::from_utf8_lossy(record.key())
            )));
        }
        let current = self.status.get(ctx)?;
        let output = match transition(current, input.event) {
            Some(next) => {
                if next.is_final() {
                    self.status.clear(ctx)?;
                } else {
                    self.status.set(ctx, &next)?;
                }
                serde_json::to_vec(&StatusChanged {
                    order: &input.order,
                    status: next,
                })?
            }
            None => {
                let from = current.map_or("none", OrderStatus::name);
                serde_json::to_vec(&Alert {
                    order: &input.order,
                    alert: format!("invalid transition {from} -> {}", input.event.name()),
                })?
            }
        };
        ctx.emit(record.key(), output);
        Ok(())
    }
}

eddy_sdk::export_operator!(OrderStateMachine);

#[cfg(test)]
#[path = "../../golden.rs"]
mod golden;

#[cfg(test)]
mod tests {
    use eddy_sdk::testing::Harness;

    use super::*;

    fn send(harness: &mut Harness<OrderStateMachine>, order: &str, event: &str) -> String {
        let value = format!(r#"{{"order":"{order}","event":"{event}"}}"#);
        let emitted = harness.process_utf8(order, &value).unwrap();
        assert_eq!(emitted.len(), 1);
        emitted[0].1.clone()
    }

    #[test]
    fn the_happy_path_ends_with_no_state() {
        let mut h = Harness::<OrderStateMachine>::new();
        assert_eq!(
            send(&mut h, "o1", "create"),
            r#"{"order":"o1","status":"created"}"#
        );
        assert_eq!(
            send(&mut h, "o1", "pay"),
            r#"{"order":"o1","status":"paid"}"#
        );
        assert_eq!(
            send(&mut h, "o1", "ship"),
            r#"{"order":"o1","status":"shipped"}"#
        );
        assert_eq!(
            h.value::<OrderStatus>("status", "o1").unwrap(),
            Some(OrderStatus::Shipped)
        );
        assert_eq!(
            send(&mut h, "o1", "deliver"),
            r#"{"order":"o1","status":"delivered"}"#
        );
        assert!(!h.has_state("o1"));
        assert_eq!(
            send(&mut h, "o1", "create"),
            r#"{"order":"o1","status":"created"}"#
        );
    }

    #[test]
    fn invalid_transitions_alert_and_keep_the_state() {
        let mut h = Harness::<OrderStateMachine>::new();
        assert_eq!(
            send(&mut h, "o1", "pay"),
            r#"{"order":"o1","alert":"invalid transition none -> pay"}"#
        );
        assert!(!h.has_state("o1"));
        send(&mut h, "o1", "create");
        send(&mut h, "o1", "pay");
        send(&mut h, "o1", "ship");
        assert_eq!(
            send(&mut h, "o1", "pay"),
            r#"{"order":"o1","alert":"invalid transition shipped -> pay"}"#
        );
        assert_eq!(
            h.value::<OrderStatus>("status", "o1").unwrap(),
            Some(OrderStatus::Shipped)
        );
    }

    #[test]
    fn cancel_works_from_every_state_that_is_not_final() {
        use OrderEvent as E;
        use OrderStatus as S;
        for state in [S::Created, S::Paid, S::Shipped] {
            assert_eq!(transition(Some(state), E::Cancel), Some(S::Cancelled));
        }
        assert_eq!(transition(None, E::Cancel), None);
        let mut h = Harness::<OrderStateMachine>::new();
        send(&mut h, "o9", "create");
        assert_eq!(
            send(&mut h, "o9", "cancel"),
            r#"{"order":"o9","status":"cancelled"}"#
        );
        assert!(!h.has_state("o9"));
    }

    #[test]
    fn bad_input_is_an_error() {
        let mut h = Harness::<OrderStateMachine>::new();
        let error = h
            .process("o1", r#"{"order":"o1","event":"explode"}"#)
            .unwrap_err();
        assert!(
            error.message().contains("unknown variant `explode`"),
            "{error}"
        );
        let error = h
            .process("o2", r#"{"order":"o1","event":"create"}"#)
            .unwrap_err();
        assert!(
            error.message().contains("does not match the record key"),
            "{error}"
        );
        assert!(h.process("o1", "not json").is_err());
    }

    #[test]
    fn golden_input_gives_expected_output() {
        golden::check(
            Harness::<OrderStateMachine>::new(),
            env!("CARGO_MANIFEST_DIR"),
        );
    }
}
