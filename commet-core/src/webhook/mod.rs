//! Webhooks on the wire (DESIGN.md section 9): the endpoint secret, both signature schemes and
//! their verifiers. A receiver depends on this module (and the event envelope) alone; the
//! sender's records (endpoints, deliveries, the retry schedule) are in
//! [`delivery`](crate::delivery).
//!
//! | module | what it holds |
//! |---|---|
//! | [`secret`] | [`WebhookSecret`]: `whsec_` + base64 of 24 to 64 random bytes, never printed |
//! | [`signing`] | the headers of a delivery, signed with Commet's scheme and Standard Webhooks v1: [`sign_delivery`], [`SignedHeaders`] |
//! | [`verify`](mod@verify) | the receiver's side: [`verify()`], [`verify_and_parse`], [`verify_standard`] |

pub mod secret;
pub mod signing;
pub mod verify;

pub use secret::WebhookSecret;
pub use signing::{SignedHeaders, commet_signature, sign_delivery, standard_signature};
pub use verify::{
    HeaderSource, TOLERANCE, VerifiedStandard, WebhookError, verify, verify_and_parse,
    verify_standard,
};
