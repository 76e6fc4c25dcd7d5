//! [`DeadlineSource`]: what the due runner drives. Each source knows its earliest deadline and
//! does the work due now; `due.rs` runs them in order, `webhooks/deliver.rs` has two.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::billing::Billing;
use crate::error::Result;
use crate::run_report::RunReport;

/// A source of deadlines the due runner drives. See the [due runner](crate::due).
#[async_trait]
pub(crate) trait DeadlineSource: Send + Sync + std::fmt::Debug {
    /// Its earliest deadline, if it has any.
    async fn next_deadline(&self, billing: &Billing) -> Result<Option<DateTime<Utc>>>;

    /// Do the work due now.
    async fn run(&self, billing: &Billing, report: &mut RunReport) -> Result<()>;
}
