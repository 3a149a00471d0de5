//! Serve a service model on a simulated node.
//!
//! The adapter between a synchronous model (`services::ServiceModel`) and
//! the transport: on arrival it calls `begin` with the node's own (skewed)
//! clock and the delivery's injected fault, waits the service's processing
//! time, then `complete`s at the commit instant. A crash between the two
//! drops the task and `abort`s the ticket (nothing applied), which is the
//! "fully applied or not at all" rule for in-flight requests.
//!
//! Not here: the models' semantics, or network latency (`net.rs`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::net::{Delivery, Handler};
use super::rng::{mix, unit};
use super::world::World;
use crate::services::{Begin, ServiceModel, Ticket};

/// Processing time of a service: `min_ms` plus an exponential tail with
/// median `p50_ms` above it, capped at `max_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceLatency {
    /// Fastest processing time, in ms.
    pub min_ms: u64,
    /// Median processing time, in ms (at or below `min_ms`: always
    /// `min_ms`).
    pub p50_ms: u64,
    /// Cap on the processing time, in ms (`min_ms` if below it).
    pub max_ms: u64,
}

impl Default for ServiceLatency {
    fn default() -> Self {
        ServiceLatency {
            min_ms: 5,
            p50_ms: 50,
            max_ms: 2_000,
        }
    }
}

impl ServiceLatency {
    /// The processing time for a mixed word `h`.
    pub fn sample_ms(&self, h: u64) -> u64 {
        let u = unit(h);
        let median_above_min = self.p50_ms.saturating_sub(self.min_ms) as f64;
        // Exponential with the given median: -ln(1-u) * median / ln 2.
        let tail = -(1.0 - u).ln() * median_above_min / std::f64::consts::LN_2;
        self.min_ms
            .saturating_add(tail as u64)
            .min(self.max_ms.max(self.min_ms))
    }
}

/// Aborts an in-flight ticket if the request task dies (node crash).
struct AbortOnDrop<M: ServiceModel> {
    model: Arc<Mutex<M>>,
    ticket: Option<Ticket>,
}

impl<M: ServiceModel> Drop for AbortOnDrop<M> {
    fn drop(&mut self) {
        if let Some(t) = self.ticket.take() {
            if let Ok(mut m) = self.model.lock() {
                m.abort(t);
            }
        }
    }
}

/// A handler that serves `model` on node `node`. `unwrap` takes the model's
/// request out of the wire request (`None`: not for this service, answered
/// with `misrouted`), `wrap` puts the model's response into the wire
/// response.
pub fn serve_model<M, Req, Resp>(
    world: &World,
    node: &str,
    model: Arc<Mutex<M>>,
    latency: ServiceLatency,
    unwrap: fn(Req) -> Option<M::Request>,
    wrap: fn(M::Response) -> Resp,
    misrouted: Resp,
) -> Handler<Req, Resp>
where
    M: ServiceModel + Send + 'static,
    M::Request: Send,
    M::Response: Send,
    Req: Send + 'static,
    Resp: Clone + Send + Sync + 'static,
{
    let world = world.clone();
    let node = node.to_string();
    let node_hash = crate::trace::fnv1a(crate::trace::FNV_OFFSET, node.as_bytes());
    Arc::new(move |req: Req, delivery: Delivery| {
        let world = world.clone();
        let node = node.clone();
        let model = model.clone();
        let misrouted = misrouted.clone();
        Box::pin(async move {
            let Some(req) = unwrap(req) else {
                return misrouted;
            };
            let now = world.clock_ms(&node);
            let begun = model
                .lock()
                .expect("model lock")
                .begin(now, req, delivery.injected);
            let ticket = match begun {
                Begin::Done(resp) => return wrap(resp),
                Begin::Pending(t) => t,
            };
            let mut guard = AbortOnDrop {
                model: model.clone(),
                ticket: Some(ticket),
            };
            let h = mix(
                world.seed(),
                &[
                    node_hash,
                    u64::from(delivery.from),
                    u64::from(delivery.index),
                    u64::from(delivery.copy),
                ],
            );
            tokio::time::sleep(Duration::from_millis(latency.sample_ms(h))).await;
            let ticket = guard.ticket.take().expect("ticket taken once");
            let now = world.clock_ms(&node);
            let resp = model.lock().expect("model lock").complete(now, ticket);
            wrap(resp)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_has_its_median_and_bounds() {
        let l = ServiceLatency {
            min_ms: 10,
            p50_ms: 300,
            max_ms: 5_000,
        };
        let mut v: Vec<u64> = (0..10_001u64).map(|i| l.sample_ms(mix(1, &[i]))).collect();
        v.sort();
        assert!(v.iter().all(|&x| (10..=5_000).contains(&x)));
        let median = v[5_000];
        assert!((270..=330).contains(&median), "median {median}");
    }
}
