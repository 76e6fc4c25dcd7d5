//! Uniqueness and references: the unique keys are typed errors that write nothing, references
//! to missing objects are refused, and an external id may move between the customers of one
//! change set.

use chrono::TimeDelta;

use super::{
    an_event, commit, idempotency_record, store_catalog, store_customer, store_subscription,
};
use crate::store::{ChangeSet, EntityKind, InvoiceWrite, Put, Store, StoreError, StoreExt};
use commet_core::catalog::{NewPlan, Plan};
use commet_core::fixtures::{Fixtures, utc};

/// The unique keys are typed [`StoreError::AlreadyExists`] errors and write nothing: external
/// ids, recurring periods, attempt keys, plan codes, event ids, live idempotency keys.
pub async fn uniqueness_constraints_are_typed_errors(store: &dyn Store) {
    let catalog = Fixtures::new();
    let now = utc(2024, 1, 1);
    store_catalog(store, &catalog).await;
    let exists = |result: Result<_, StoreError>, kind: EntityKind| match result {
        Err(StoreError::AlreadyExists { kind: got, .. }) => assert_eq!(got, kind),
        other => panic!("expected {kind} to already exist, got {other:?}"),
    };
    // External id.
    let first = store_customer(store, catalog.customer(1, now)).await;
    let twin = catalog.customer(1, now);
    exists(
        store
            .commit(ChangeSet {
                customers: vec![Put::of(twin.clone())],
                ..ChangeSet::default()
            })
            .await,
        EntityKind::Customer,
    );
    assert_eq!(store.customer(twin.id()).await.unwrap(), None);
    assert_eq!(
        store
            .customer_by_external_id("user_1")
            .await
            .unwrap()
            .map(|c| c.id()),
        Some(first.id())
    );
    // Plan code.
    let same_code = Plan::new(
        catalog.ids.next(now),
        NewPlan {
            code: "pro".into(),
            name: "Pro again".into(),
            description: None,
        },
    )
    .unwrap();
    exists(
        store
            .commit(ChangeSet {
                plans: vec![same_code],
                ..ChangeSet::default()
            })
            .await,
        EntityKind::Plan,
    );
    // Recurring period.
    let subscription = store_subscription(store, catalog.active_for(first.id())).await;
    let period = subscription.current_period().unwrap();
    let invoice = catalog.recurring_invoice(&subscription, period);
    commit(
        store,
        ChangeSet {
            invoices: vec![InvoiceWrite::numbered(invoice.clone(), Fixtures::series())],
            ..ChangeSet::default()
        },
    )
    .await;
    let second = catalog.recurring_invoice(&subscription, period);
    exists(
        store
            .commit(ChangeSet {
                invoices: vec![InvoiceWrite::numbered(second.clone(), Fixtures::series())],
                ..ChangeSet::default()
            })
            .await,
        EntityKind::Invoice,
    );
    assert_eq!(store.invoice(second.id()).await.unwrap(), None);
    assert_eq!(
        store
            .recurring_invoice(subscription.id(), period.start())
            .await
            .unwrap()
            .map(|i| i.id()),
        Some(invoice.id())
    );
    // Attempt key.
    commit(
        store,
        ChangeSet {
            payment_attempts: vec![Put::of(catalog.attempt(&invoice, 1, now))],
            ..ChangeSet::default()
        },
    )
    .await;
    exists(
        store
            .commit(ChangeSet {
                payment_attempts: vec![Put::of(catalog.attempt(&invoice, 1, now))],
                ..ChangeSet::default()
            })
            .await,
        EntityKind::PaymentAttempt,
    );
    // Event id.
    let event = an_event(&catalog, now);
    commit(
        store,
        ChangeSet {
            events: vec![event.clone()],
            ..ChangeSet::default()
        },
    )
    .await;
    exists(
        store
            .commit(ChangeSet {
                events: vec![event],
                ..ChangeSet::default()
            })
            .await,
        EntityKind::Event,
    );
    // Live idempotency key.
    commit(
        store,
        ChangeSet {
            idempotency: vec![Put::of(idempotency_record("once", now))],
            ..ChangeSet::default()
        },
    )
    .await;
    exists(
        store
            .commit(ChangeSet {
                idempotency: vec![Put::of(idempotency_record(
                    "once",
                    now + TimeDelta::hours(1),
                ))],
                ..ChangeSet::default()
            })
            .await,
        EntityKind::IdempotencyRecord,
    );
}

/// Writes that name objects the store does not have (a subscription's customer, a price's
/// plan, an attempt's invoice) are refused as invalid and write nothing.
pub async fn references_to_missing_objects_are_refused(store: &dyn Store) {
    let catalog = Fixtures::new();
    let invalid = |result: Result<_, StoreError>| {
        assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    };
    let orphan = catalog.active();
    invalid(
        store
            .commit(ChangeSet {
                subscriptions: vec![Put::of(orphan.clone())],
                ..ChangeSet::default()
            })
            .await,
    );
    invalid(
        store
            .commit(ChangeSet {
                prices: vec![catalog.pro.clone()],
                ..ChangeSet::default()
            })
            .await,
    );
    let invoice = catalog.recurring_invoice(&orphan, orphan.current_period().unwrap());
    invalid(
        store
            .commit(ChangeSet {
                payment_attempts: vec![Put::of(catalog.attempt(&invoice, 1, utc(2024, 1, 1)))],
                ..ChangeSet::default()
            })
            .await,
    );
    assert_eq!(store.subscription(orphan.id()).await.unwrap(), None);
    assert!(store.prices().await.unwrap().is_empty());
    // In one change set with what they refer to, they are fine.
    let owner = catalog.customer_with_id(orphan.customer(), 1, utc(2024, 1, 1));
    commit(
        store,
        ChangeSet {
            customers: vec![Put::of(owner)],
            plans: catalog.plans.clone(),
            prices: catalog.prices().into_iter().cloned().collect(),
            subscriptions: vec![Put::of(orphan)],
            invoices: vec![InvoiceWrite::numbered(invoice.clone(), Fixtures::series())],
            payment_attempts: vec![Put::of(catalog.attempt(&invoice, 1, utc(2024, 1, 1)))],
            ..ChangeSet::default()
        },
    )
    .await;
}

/// An external id may move between the customers of one change set (each rewritten customer
/// lets go of its own first): two customers swap theirs, and a third takes one a rewritten
/// customer gives up. One held by a customer the change set does not rewrite stays taken, and
/// one claimed twice in a change set is refused, writing nothing.
pub async fn an_external_id_moves_between_customers_of_one_change_set(store: &dyn Store) {
    let catalog = Fixtures::new();
    let now = utc(2024, 1, 1);
    let with_external_id = |customer: &commet_core::customer::Customer, id: Option<&str>| {
        let mut customer = customer.clone();
        let mut details = customer.to_record().details;
        details.external_id = id.map(str::to_owned);
        customer.update(details, now).unwrap();
        customer
    };
    let ana = store_customer(store, catalog.customer(1, now)).await;
    let bob = store_customer(store, catalog.customer(2, now)).await;
    let cy = store_customer(store, catalog.customer(3, now)).await;

    // Ana and Bob swap.
    commit(
        store,
        ChangeSet {
            customers: vec![
                Put::of(with_external_id(&ana, Some("user_2"))),
                Put::of(with_external_id(&bob, Some("user_1"))),
            ],
            ..ChangeSet::default()
        },
    )
    .await;
    let holder = |id: &'static str| async move {
        store
            .customer_by_external_id(id)
            .await
            .unwrap()
            .map(|customer| customer.id())
    };
    assert_eq!(holder("user_1").await, Some(bob.id()));
    assert_eq!(holder("user_2").await, Some(ana.id()));
    let ana = store.get_customer(ana.id()).await.unwrap();
    let bob = store.get_customer(bob.id()).await.unwrap();

    // Ana lets go of hers and a new customer takes it, in one change set.
    let dee = catalog.customer(2, now);
    commit(
        store,
        ChangeSet {
            customers: vec![Put::of(dee.clone()), Put::of(with_external_id(&ana, None))],
            ..ChangeSet::default()
        },
    )
    .await;
    assert_eq!(holder("user_2").await, Some(dee.id()));
    let ana = store.get_customer(ana.id()).await.unwrap();
    assert_eq!(ana.external_id(), None);

    // Cy holds user_3 and is not rewritten: Ana cannot take it, even with Bob moving too.
    let refused = store
        .commit(ChangeSet {
            customers: vec![
                Put::of(with_external_id(&bob, Some("user_9"))),
                Put::of(with_external_id(&ana, Some("user_3"))),
            ],
            ..ChangeSet::default()
        })
        .await;
    assert_eq!(
        refused.unwrap_err(),
        StoreError::AlreadyExists {
            kind: EntityKind::Customer,
            key: "external_id=user_3".into(),
        }
    );
    // Bob gives his up, and both Ana and Cy's replacement claim it: claimed twice.
    let refused = store
        .commit(ChangeSet {
            customers: vec![
                Put::of(with_external_id(&bob, None)),
                Put::of(with_external_id(&ana, Some("user_1"))),
                Put::of(with_external_id(&cy, Some("user_1"))),
            ],
            ..ChangeSet::default()
        })
        .await;
    assert_eq!(
        refused.unwrap_err(),
        StoreError::AlreadyExists {
            kind: EntityKind::Customer,
            key: "external_id=user_1".into(),
        }
    );
    assert_eq!(
        holder("user_1").await,
        Some(bob.id()),
        "nothing was written"
    );
    assert_eq!(holder("user_3").await, Some(cy.id()));
    assert_eq!(holder("user_9").await, None);
    assert_eq!(store.get_customer(bob.id()).await.unwrap(), bob);
}
