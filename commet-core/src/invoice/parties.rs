//! Who sells and who buys: the legal details an invoice carries.
//!
//! The engine is configured with the [`Issuer`]; a customer may have [`BillingDetails`]. When
//! an invoice leaves `draft`, both are copied onto it as [`InvoiceParties`] and never change
//! afterwards, as invoicing law expects: editing the customer later does not change an issued
//! invoice. The issuer's logo is branding, not a legal detail: it is not copied onto each
//! invoice (a renderer takes it from its own configuration).

use serde::{Deserialize, Serialize};

use crate::InvalidField;
use crate::customer::Customer;
use crate::validation::check_text;

/// The longest name, address line or tax id, in characters.
pub const MAX_PARTY_FIELD_CHARS: usize = 200;
/// The longest invoice footer, in characters.
pub const MAX_FOOTER_CHARS: usize = 1_000;
/// The largest logo, in bytes.
pub const MAX_LOGO_BYTES: usize = 512 * 1024;

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    /// The first line: street and number.
    pub line1: String,
    /// A second line, if any.
    pub line2: Option<String>,
    /// The city.
    pub city: String,
    /// The postal code, if the country has them.
    pub postal_code: Option<String>,
    /// The state, province or region, if any.
    pub region: Option<String>,
    /// The country, as its ISO 3166-1 alpha-2 code (`DE`, `US`).
    pub country: String,
}

impl PostalAddress {
    /// Check every field, naming it under `field` (`billing.address.city`).
    pub fn check(&self, field: &str) -> Result<(), InvalidField> {
        let name = |part: &str| format!("{field}.{part}");
        check_text(&name("line1"), &self.line1, true, MAX_PARTY_FIELD_CHARS)?;
        check_text(&name("city"), &self.city, true, MAX_PARTY_FIELD_CHARS)?;
        for (part, value) in [
            ("line2", &self.line2),
            ("postal_code", &self.postal_code),
            ("region", &self.region),
        ] {
            if let Some(value) = value {
                check_text(&name(part), value, true, MAX_PARTY_FIELD_CHARS)?;
            }
        }
        if self.country.len() != 2
            || !self.country.bytes().all(|b| b.is_ascii_uppercase())
            || self.country.parse::<iso_currency::Country>().is_err()
        {
            return Err(InvalidField::new(
                name("country"),
                "must be an ISO 3166-1 alpha-2 country code such as DE or US",
            ));
        }
        Ok(())
    }

    /// The address as printed, one line each (the country by its code).
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![self.line1.clone()];
        lines.extend(self.line2.clone());
        let city = match &self.postal_code {
            Some(code) => format!("{code} {}", self.city),
            None => self.city.clone(),
        };
        lines.push(match &self.region {
            Some(region) => format!("{city}, {region}"),
            None => city,
        });
        lines.push(self.country.clone());
        lines
    }
}

/// A customer's billing details: the legal name, address and tax id their invoices carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingDetails {
    /// The legal name (a person's or a company's).
    pub legal_name: String,
    /// The billing address.
    pub address: PostalAddress,
    /// A tax id (VAT number, EIN ...), if any.
    pub tax_id: Option<String>,
}

impl BillingDetails {
    /// Check every field (named under `billing`).
    pub fn check(&self) -> Result<(), InvalidField> {
        check_text(
            "billing.legal_name",
            &self.legal_name,
            true,
            MAX_PARTY_FIELD_CHARS,
        )?;
        self.address.check("billing.address")?;
        if let Some(tax_id) = &self.tax_id {
            check_text("billing.tax_id", tax_id, true, MAX_PARTY_FIELD_CHARS)?;
        }
        Ok(())
    }
}

/// The seller, as the engine is configured with it.
#[derive(Clone, PartialEq, Eq)]
pub struct Issuer {
    /// The legal name.
    pub legal_name: String,
    /// The registered address.
    pub address: PostalAddress,
    /// A tax id (VAT number ...), if any.
    pub tax_id: Option<String>,
    /// Where customers write about invoices.
    pub email: String,
    /// A logo (PNG or JPEG bytes), if any: branding, drawn by renderers, not frozen on invoices.
    pub logo: Option<Vec<u8>>,
    /// Text printed at the foot of every invoice (bank details, registration, terms).
    pub footer: Option<String>,
}

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer")
            .field("legal_name", &self.legal_name)
            .field("address", &self.address)
            .field("tax_id", &self.tax_id)
            .field("email", &self.email)
            .field("logo_bytes", &self.logo.as_ref().map(Vec::len))
            .field("footer", &self.footer)
            .finish()
    }
}

impl Issuer {
    /// Check every field (named under `issuer`).
    pub fn check(&self) -> Result<(), InvalidField> {
        check_text(
            "issuer.legal_name",
            &self.legal_name,
            true,
            MAX_PARTY_FIELD_CHARS,
        )?;
        self.address.check("issuer.address")?;
        if let Some(tax_id) = &self.tax_id {
            check_text("issuer.tax_id", tax_id, true, MAX_PARTY_FIELD_CHARS)?;
        }
        check_text("issuer.email", &self.email, true, MAX_PARTY_FIELD_CHARS)?;
        if !self.email.contains('@') {
            return Err(InvalidField::new(
                "issuer.email",
                "is not an e-mail address",
            ));
        }
        if let Some(footer) = &self.footer {
            check_text("issuer.footer", footer, false, MAX_FOOTER_CHARS)?;
        }
        if let Some(logo) = &self.logo {
            let png = logo.starts_with(b"\x89PNG\r\n\x1a\n");
            let jpeg = logo.starts_with(&[0xff, 0xd8, 0xff]);
            if !(png || jpeg) || logo.len() > MAX_LOGO_BYTES {
                return Err(InvalidField::new(
                    "issuer.logo",
                    format_args!("must be a PNG or JPEG of at most {MAX_LOGO_BYTES} bytes"),
                ));
            }
        }
        Ok(())
    }

    /// The issuer as an invoice records it.
    #[must_use]
    pub fn party(&self) -> Party {
        Party {
            legal_name: self.legal_name.clone(),
            email: Some(self.email.clone()),
            address: Some(self.address.clone()),
            tax_id: self.tax_id.clone(),
        }
    }
}

/// One party of an invoice, as recorded on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    /// The legal name.
    pub legal_name: String,
    /// The e-mail address, if any.
    pub email: Option<String>,
    /// The address, if known.
    pub address: Option<PostalAddress>,
    /// The tax id, if any.
    pub tax_id: Option<String>,
}

/// Who sold and who bought, frozen on an invoice when it left `draft`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceParties {
    /// The seller.
    pub issuer: Party,
    /// The buyer.
    pub customer: Party,
    /// The issuer's footer at the time.
    pub footer: Option<String>,
}

impl InvoiceParties {
    /// The parties of an invoice issued now by `seller` (with its `footer`) to `customer`: the
    /// customer's legal name is their billing details', else their full name, else their
    /// e-mail address.
    #[must_use]
    pub fn of(seller: &Party, footer: Option<&str>, customer: &Customer) -> InvoiceParties {
        let billing = customer.billing();
        let legal_name = billing
            .map(|b| b.legal_name.clone())
            .or_else(|| customer.full_name().map(str::to_owned))
            .unwrap_or_else(|| customer.email().to_owned());
        InvoiceParties {
            issuer: seller.clone(),
            customer: Party {
                legal_name,
                email: Some(customer.email().to_owned()),
                address: billing.map(|b| b.address.clone()),
                tax_id: billing.and_then(|b| b.tax_id.clone()),
            },
            footer: footer.map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address() -> PostalAddress {
        PostalAddress {
            line1: "Müllerstraße 12".into(),
            line2: None,
            city: "Berlin".into(),
            postal_code: Some("10115".into()),
            region: None,
            country: "DE".into(),
        }
    }

    #[test]
    fn addresses_are_checked_and_printed() {
        assert!(address().check("billing.address").is_ok());
        assert_eq!(address().lines(), ["Müllerstraße 12", "10115 Berlin", "DE"]);
        for country in ["de", "XX", "DEU", ""] {
            let bad = PostalAddress {
                country: country.into(),
                ..address()
            };
            assert_eq!(
                bad.check("billing.address").unwrap_err().field,
                "billing.address.country"
            );
        }
        let no_city = PostalAddress {
            city: " ".into(),
            ..address()
        };
        assert_eq!(
            no_city.check("issuer.address").unwrap_err().field,
            "issuer.address.city"
        );
    }

    #[test]
    fn issuers_are_checked() {
        let issuer = Issuer {
            legal_name: "Acme GmbH".into(),
            address: address(),
            tax_id: Some("DE123456789".into()),
            email: "billing@acme.example".into(),
            logo: None,
            footer: Some("IBAN DE00 0000".into()),
        };
        assert!(issuer.check().is_ok());
        assert_eq!(issuer.party().tax_id.as_deref(), Some("DE123456789"));
        let bad_logo = Issuer {
            logo: Some(b"GIF89a".to_vec()),
            ..issuer.clone()
        };
        assert_eq!(bad_logo.check().unwrap_err().field, "issuer.logo");
        let bad_email = Issuer {
            email: "billing".into(),
            ..issuer
        };
        assert_eq!(bad_email.check().unwrap_err().field, "issuer.email");
    }
}
