//! Customers: who subscribes and pays.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::InvalidField;
use crate::event::payload::CustomerData;
use crate::ids::CustomerId;
use crate::invoice::BillingDetails;
use crate::money::{Currency, Money, MoneyError};
use crate::validation::{check_metadata, check_text};

/// A customer: contact details, the payment method on file, and credit carried between invoices.
///
/// Decisions written down here:
/// - `external_id` is the integrating service's own id for the customer (a user id); stores keep
///   it unique, so it is the natural key to find a customer by.
/// - The payment method is the gateway's reference (`pm_...`): commet never sees card numbers.
/// - Credit (from proration credits larger than the charge) is kept per currency, never negative,
///   and applied to the next invoice in that currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CustomerRecord", into = "CustomerRecord")]
pub struct Customer {
    id: CustomerId,
    external_id: Option<String>,
    email: String,
    full_name: Option<String>,
    payment_method: Option<String>,
    billing: Option<BillingDetails>,
    credit: BTreeMap<Currency, Money>,
    metadata: BTreeMap<String, String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: u64,
}

/// What a new customer is made of, or what an update sets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CustomerDetails {
    /// The integrating service's own id for the customer: 1 to 200 characters, unique.
    pub external_id: Option<String>,
    /// The billing e-mail address.
    pub email: String,
    /// The customer's full name.
    pub full_name: Option<String>,
    /// Free-form key/value pairs (at most 50; keys of 1 to 40 and values of up to 500 characters).
    pub metadata: BTreeMap<String, String>,
}

/// The plain data of a [`Customer`], for stores and serialization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerRecord {
    /// The id.
    pub id: CustomerId,
    /// Contact details.
    #[serde(flatten)]
    pub details: CustomerDetails,
    /// The gateway's reference to the payment method on file.
    pub payment_method: Option<String>,
    /// The billing details invoices carry (legal name, address, tax id), if given.
    #[serde(default)]
    pub billing: Option<BillingDetails>,
    /// Credit per currency (positive amounts only).
    pub credit: BTreeMap<Currency, Money>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// The stored version: 0 before the first write.
    pub version: u64,
}

fn check_details(details: &CustomerDetails) -> Result<(), InvalidField> {
    if let Some(external_id) = &details.external_id {
        check_text("external_id", external_id, true, 200)?;
    }
    check_email(&details.email)?;
    if let Some(name) = &details.full_name {
        check_text("full_name", name, true, 200)?;
    }
    check_metadata(&details.metadata)
}

/// An address with one `@`, something on each side, no spaces, at most 254 characters. Real
/// validation is sending mail; this only refuses what is plainly not an address.
fn check_email(email: &str) -> Result<(), InvalidField> {
    check_text("email", email, true, 254)?;
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    };
    if valid {
        Ok(())
    } else {
        Err(InvalidField::new("email", "is not an e-mail address"))
    }
}

fn check_payment_method(payment_method: &str) -> Result<(), InvalidField> {
    check_text("payment_method", payment_method, true, 255)
}

impl Customer {
    /// A new customer.
    pub fn new(
        id: CustomerId,
        details: CustomerDetails,
        now: DateTime<Utc>,
    ) -> Result<Customer, InvalidField> {
        Customer::from_record(CustomerRecord {
            id,
            details,
            payment_method: None,
            billing: None,
            credit: BTreeMap::new(),
            created_at: now,
            updated_at: now,
            version: 0,
        })
    }

    /// Rebuild a customer from its record, refusing inconsistent data with the field named.
    pub fn from_record(record: CustomerRecord) -> Result<Customer, InvalidField> {
        check_details(&record.details)?;
        if let Some(payment_method) = &record.payment_method {
            check_payment_method(payment_method)?;
        }
        if let Some(billing) = &record.billing {
            billing.check()?;
        }
        for (currency, amount) in &record.credit {
            if amount.currency() != *currency || !amount.is_positive() {
                return Err(InvalidField::new(
                    "credit",
                    format_args!("the {currency} credit must be a positive {currency} amount"),
                ));
            }
        }
        Ok(Customer {
            id: record.id,
            external_id: record.details.external_id,
            email: record.details.email,
            full_name: record.details.full_name,
            payment_method: record.payment_method,
            billing: record.billing,
            credit: record.credit,
            metadata: record.details.metadata,
            created_at: record.created_at,
            updated_at: record.updated_at,
            version: record.version,
        })
    }

    /// The plain data, for a store to write.
    #[must_use]
    pub fn to_record(&self) -> CustomerRecord {
        CustomerRecord::from(self.clone())
    }

    /// Replace the contact details.
    pub fn update(
        &mut self,
        details: CustomerDetails,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidField> {
        check_details(&details)?;
        self.external_id = details.external_id;
        self.email = details.email;
        self.full_name = details.full_name;
        self.metadata = details.metadata;
        self.updated_at = now;
        Ok(())
    }

    /// Put a payment method on file (the gateway's reference).
    pub fn set_payment_method(
        &mut self,
        payment_method: &str,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidField> {
        check_payment_method(payment_method)?;
        self.payment_method = Some(payment_method.to_owned());
        self.updated_at = now;
        Ok(())
    }

    /// Set (or clear) the billing details issued invoices carry. Invoices issued before keep
    /// the details they were issued with.
    pub fn set_billing_details(
        &mut self,
        billing: Option<BillingDetails>,
        now: DateTime<Utc>,
    ) -> Result<(), InvalidField> {
        if let Some(billing) = &billing {
            billing.check()?;
        }
        self.billing = billing;
        self.updated_at = now;
        Ok(())
    }

    /// The billing details, if given.
    #[must_use]
    pub fn billing(&self) -> Option<&BillingDetails> {
        self.billing.as_ref()
    }

    /// The credit available in `currency` (zero if none).
    #[must_use]
    pub fn credit(&self, currency: Currency) -> Money {
        self.credit
            .get(&currency)
            .copied()
            .unwrap_or_else(|| Money::zero(currency))
    }

    /// All credit, per currency.
    #[must_use]
    pub fn credits(&self) -> &BTreeMap<Currency, Money> {
        &self.credit
    }

    /// Add credit (a positive amount) or consume it (a negative one). The balance never goes
    /// below zero: consuming more than is there is [`InvalidField`] `credit`.
    pub fn adjust_credit(&mut self, change: Money, now: DateTime<Utc>) -> Result<(), InvalidField> {
        let currency = change.currency();
        let balance = self
            .credit(currency)
            .checked_add(change)
            .map_err(|e: MoneyError| InvalidField::new("credit", e))?;
        if balance.is_negative() {
            return Err(InvalidField::new(
                "credit",
                format_args!("only {} is available", self.credit(currency)),
            ));
        }
        if balance.is_zero() {
            self.credit.remove(&currency);
        } else {
            self.credit.insert(currency, balance);
        }
        self.updated_at = now;
        Ok(())
    }

    /// The id.
    #[must_use]
    pub fn id(&self) -> CustomerId {
        self.id
    }

    /// The integrating service's own id for the customer.
    #[must_use]
    pub fn external_id(&self) -> Option<&str> {
        self.external_id.as_deref()
    }

    /// The billing e-mail address.
    #[must_use]
    pub fn email(&self) -> &str {
        &self.email
    }

    /// The full name.
    #[must_use]
    pub fn full_name(&self) -> Option<&str> {
        self.full_name.as_deref()
    }

    /// The gateway's reference to the payment method on file.
    #[must_use]
    pub fn payment_method(&self) -> Option<&str> {
        self.payment_method.as_deref()
    }

    /// Free-form key/value pairs.
    #[must_use]
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// When it was created.
    #[must_use]
    pub fn created_at(&self) -> DateTime<Utc> {
        self.created_at
    }

    /// When it last changed.
    #[must_use]
    pub fn updated_at(&self) -> DateTime<Utc> {
        self.updated_at
    }

    /// The stored version (0 before the first write).
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Set the stored version; for stores, which bump it on each write.
    pub fn set_version(&mut self, version: u64) {
        self.version = version;
    }

    /// The `customer.created` / `customer.updated` event data.
    #[must_use]
    pub fn event_data(&self) -> CustomerData {
        CustomerData {
            id: self.id,
            external_id: self.external_id.clone(),
            full_name: self.full_name.clone(),
            email: self.email.clone(),
            metadata: self.metadata.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

impl From<Customer> for CustomerRecord {
    fn from(customer: Customer) -> Self {
        CustomerRecord {
            id: customer.id,
            details: CustomerDetails {
                external_id: customer.external_id,
                email: customer.email,
                full_name: customer.full_name,
                metadata: customer.metadata,
            },
            payment_method: customer.payment_method,
            billing: customer.billing,
            credit: customer.credit,
            created_at: customer.created_at,
            updated_at: customer.updated_at,
            version: customer.version,
        }
    }
}

impl TryFrom<CustomerRecord> for Customer {
    type Error = InvalidField;

    fn try_from(record: CustomerRecord) -> Result<Self, Self::Error> {
        Customer::from_record(record)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
    }

    fn ana() -> CustomerDetails {
        CustomerDetails {
            external_id: Some("user_42".into()),
            email: "ana@example.com".into(),
            full_name: Some("Ana Lima".into()),
            metadata: BTreeMap::new(),
        }
    }

    fn id() -> CustomerId {
        "cus_01h455vb4pex5vsknk084sn02q".parse().unwrap()
    }

    #[test]
    fn invalid_details_name_the_field() {
        let field = |details| Customer::new(id(), details, now()).unwrap_err().field;
        assert_eq!(
            field(CustomerDetails {
                email: "ana".into(),
                ..ana()
            }),
            "email"
        );
        assert_eq!(
            field(CustomerDetails {
                email: "a b@x.io".into(),
                ..ana()
            }),
            "email"
        );
        assert_eq!(
            field(CustomerDetails {
                email: "ana@localhost".into(),
                ..ana()
            }),
            "email"
        );
        assert_eq!(
            field(CustomerDetails {
                external_id: Some(String::new()),
                ..ana()
            }),
            "external_id"
        );
        assert_eq!(
            field(CustomerDetails {
                full_name: Some(" ".into()),
                ..ana()
            }),
            "full_name"
        );
    }

    #[test]
    fn credit_is_kept_per_currency_and_never_goes_negative() {
        let mut customer = Customer::new(id(), ana(), now()).unwrap();
        customer
            .adjust_credit(Money::from_minor(2_581, Currency::USD), now())
            .unwrap();
        customer
            .adjust_credit(Money::from_minor(-1_000, Currency::USD), now())
            .unwrap();
        assert_eq!(
            customer.credit(Currency::USD),
            Money::from_minor(1_581, Currency::USD)
        );
        assert_eq!(customer.credit(Currency::EUR), Money::zero(Currency::EUR));
        let err = customer
            .adjust_credit(Money::from_minor(-2_000, Currency::USD), now())
            .unwrap_err();
        assert_eq!(err.field, "credit");
        customer
            .adjust_credit(Money::from_minor(-1_581, Currency::USD), now())
            .unwrap();
        assert!(customer.credits().is_empty());
    }

    #[test]
    fn records_round_trip_through_json() {
        let mut customer = Customer::new(id(), ana(), now()).unwrap();
        customer.set_payment_method("pm_card_visa", now()).unwrap();
        customer
            .adjust_credit(Money::from_minor(5, Currency::KWD), now())
            .unwrap();
        let json = serde_json::to_string(&customer).unwrap();
        assert_eq!(serde_json::from_str::<Customer>(&json).unwrap(), customer);
        let negative = json.replace("\"0.005\"", "\"-0.005\"");
        assert!(serde_json::from_str::<Customer>(&negative).is_err());
    }
}
