//! The conformance suite: one `pub async fn` per behaviour every [`Store`] must have, one file
//! per concern.
//!
//! | module | what it proves |
//! |---|---|
//! | [`round_trips`] | every entity reads back exactly as written, by id and by key; [`StoreExt`](crate::store::StoreExt) answers from the primitive reads |
//! | [`versions_and_atomicity`] | versions, conflicts and races; a refused change set writes nothing; malformed change sets; fixed lines of finalized invoices; the order broken rules are named in |
//! | [`uniqueness_and_references`] | the unique keys are typed errors; references must exist; an external id may move between the customers of one change set |
//! | [`numbering_and_sequence`] | gap-free invoice numbers and event sequence under concurrent commits |
//! | [`pagination`] | newest-first pages, stable while rows are added, and their filters |
//! | [`due_index`] | the due-work index, the attempts of an invoice, and the pending attempts found for recovery, following every rewrite |
//! | [`idempotency`] | idempotency records: as stored, live or expired, replaced at their version |
//! | [`deliveries`] | webhook endpoints, deliveries and the delivery cursor: as stored, at versions, one delivery per (endpoint, event), the due-delivery index and the delivery lists |
//!
//! Each function takes a fresh, empty store, panics (with a message saying what broke) if the
//! store misbehaves, and returns otherwise. [`store_conformance_tests!`](crate::store_conformance_tests)
//! stamps one test per function into a store crate. When a store cannot pass, fix the store,
//! never the test.
//!
//! Concurrency is exercised with several futures on one task (`join_all`): each yields between
//! its read and its commit, so their reads and commits interleave even on a store whose calls
//! never wait, and a store that runs calls on other threads sees them truly in parallel.

pub mod deliveries;
pub mod due_index;
pub mod idempotency;
pub mod numbering_and_sequence;
pub mod pagination;
pub mod round_trips;
pub mod uniqueness_and_references;
pub mod versions_and_atomicity;

use chrono::{DateTime, TimeDelta, Utc};

use super::yield_now;
use crate::idempotency::IdempotencyRecord;
use crate::store::{ChangeSet, Put, Store};
use commet_core::customer::Customer;
use commet_core::event::Event;
use commet_core::fixtures::{Fixtures, utc};
use commet_core::subscription::Subscription;

/// Stamp one `#[tokio::test]` per conformance behaviour into a store crate's tests, in one
/// module per concern (`round_trips::every_entity_round_trips_exactly`, ...).
///
/// `$make` is an expression callable with no arguments that returns a future of an
/// `Arc<dyn Store>`: a fresh, empty store for each test. Invoke it once per module.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make:expr) => {
        /// A fresh store for one conformance test.
        async fn __conformance_store() -> ::std::sync::Arc<dyn $crate::store::Store> {
            ($make)().await
        }

        $crate::__stamp_conformance_tests!(round_trips:
            every_entity_round_trips_exactly,
            customers_are_found_by_id_external_id_and_email,
            store_ext_answers_from_the_primitive_reads,
        );
        $crate::__stamp_conformance_tests!(versions_and_atomicity:
            versions_start_at_one_and_stale_writes_conflict,
            stale_commit_is_rejected_atomically,
            two_concurrent_commits_at_one_version_exactly_one_wins,
            read_modify_commit_loops_lose_no_update,
            malformed_change_sets_are_refused,
            invoice_lines_change_only_while_draft,
            the_first_broken_rule_in_rule_order_is_named,
        );
        $crate::__stamp_conformance_tests!(uniqueness_and_references:
            uniqueness_constraints_are_typed_errors,
            references_to_missing_objects_are_refused,
            an_external_id_moves_between_customers_of_one_change_set,
        );
        $crate::__stamp_conformance_tests!(numbering_and_sequence:
            invoice_numbers_stay_gap_free_and_unique_under_concurrent_commits,
            event_sequence_is_gap_free_and_ordered_under_concurrency,
        );
        $crate::__stamp_conformance_tests!(pagination:
            pagination_returns_every_row_exactly_once_while_rows_are_added,
        );
        $crate::__stamp_conformance_tests!(due_index:
            due_work_index_agrees_with_the_stored_rows,
            pending_payment_attempts_are_found_for_recovery,
            payment_attempts_of_an_invoice_follow_every_rewrite,
        );
        $crate::__stamp_conformance_tests!(idempotency:
            idempotency_records_round_trip_and_expire,
            a_live_idempotency_record_is_replaced_at_its_version,
            a_stale_idempotency_record_version_conflicts,
            a_new_idempotency_record_is_refused_over_a_live_one_and_replaces_an_expired_one,
        );
        $crate::__stamp_conformance_tests!(deliveries:
            endpoints_deliveries_and_the_cursor_round_trip,
            stale_endpoints_deliveries_and_cursors_conflict,
            one_delivery_per_endpoint_and_event_of_a_known_endpoint,
            due_deliveries_and_delivery_lists_follow_every_rewrite,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __stamp_conformance_tests {
    ($module:ident: $($name:ident),* $(,)?) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let store = super::__conformance_store().await;
                    $crate::testkit::conformance::$module::$name(&*store).await;
                }
            )*
        }
    };
}

/// An idempotency record for `key`, live for a day from `now`, never stored (version 0).
#[must_use]
pub fn idempotency_record(key: &str, now: DateTime<Utc>) -> IdempotencyRecord {
    IdempotencyRecord {
        key: key.into(),
        fingerprint: "create_customer:9f86d081".into(),
        response: r#"{"id":"cus_01h455vb4pex5vsknk084sn02q"}"#.into(),
        created_at: now,
        expires_at: now + TimeDelta::days(1),
        version: 0,
    }
}

async fn commit(store: &dyn Store, changes: ChangeSet) {
    store
        .commit(changes)
        .await
        .expect("the commit should succeed");
}

/// Store the catalog (plans and prices).
async fn store_catalog(store: &dyn Store, catalog: &Fixtures) {
    commit(
        store,
        ChangeSet {
            plans: catalog.plans.clone(),
            prices: catalog.prices().into_iter().cloned().collect(),
            ..ChangeSet::default()
        },
    )
    .await;
}

async fn store_customer(store: &dyn Store, customer: Customer) -> Customer {
    let put = Put::of(customer);
    let stored = put.stored();
    commit(
        store,
        ChangeSet {
            customers: vec![put],
            ..ChangeSet::default()
        },
    )
    .await;
    stored
}

async fn store_subscription(store: &dyn Store, subscription: Subscription) -> Subscription {
    let put = Put::of(subscription);
    let stored = put.stored();
    commit(
        store,
        ChangeSet {
            subscriptions: vec![put],
            ..ChangeSet::default()
        },
    )
    .await;
    stored
}

/// A customer and an active subscription of theirs, stored.
async fn active_subscription(store: &dyn Store, catalog: &Fixtures, n: u32) -> Subscription {
    let customer = store_customer(store, catalog.customer(n, utc(2024, 1, 1))).await;
    store_subscription(store, catalog.active_for(customer.id())).await
}

fn an_event(catalog: &Fixtures, now: DateTime<Utc>) -> commet_core::event::Envelope {
    let customer = catalog.customer(0, now);
    catalog.envelope(Event::CustomerCreated(customer.event_data()), now)
}
