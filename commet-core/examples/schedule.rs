//! Print a subscription's billing calendar.
//!
//! ```text
//! cargo run -p commet-core --example schedule -- 2024-01-31 monthly 13
//! cargo run -p commet-core --example schedule -- 2023-12-20T17:45:00Z weekly 6 --every 2
//! ```
//!
//! Arguments: the anchor (a date, taken as midnight UTC, or an RFC 3339 instant), the interval
//! (`weekly`, `monthly`, `quarterly` or `yearly`), how many periods to print, and optionally
//! `--every N` for an interval count above one.

use std::process::ExitCode;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use commet_core::calendar::{BillingCycle, Frequency, Interval};

const USAGE: &str = "usage: schedule <anchor: YYYY-MM-DD | RFC 3339> <weekly|monthly|quarterly|yearly> <periods> [--every N]";

const MAX_PERIODS: u64 = 10_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(table) => {
            print!("{table}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &[String]) -> Result<String, String> {
    let [anchor, frequency, periods, rest @ ..] = args else {
        return Err("expected at least three arguments".into());
    };
    let anchor = parse_anchor(anchor)?;
    let frequency: Frequency = frequency.parse().map_err(|e| format!("{e}"))?;
    let periods: u64 = periods
        .parse()
        .ok()
        .filter(|&n| n <= MAX_PERIODS)
        .ok_or_else(|| {
            format!("invalid periods: {periods:?} is not a whole number up to {MAX_PERIODS}")
        })?;
    let count = match rest {
        [] => 1,
        [flag, n] if flag == "--every" => n
            .parse()
            .map_err(|_| format!("invalid interval_count: {n:?} is not a whole number"))?,
        _ => return Err(format!("unexpected arguments: {}", rest.join(" "))),
    };
    let interval = Interval::new(frequency, count).map_err(|e| e.to_string())?;
    let cycle = BillingCycle::new(anchor, interval);

    let mut lines = vec![
        format!(
            "Billing calendar: anchor {}, {interval}, {periods} periods",
            anchor.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        String::new(),
        format!(
            "{:>4}  {:<16}  {:<16}  {:>4}",
            "#", "start (UTC)", "end (UTC)", "days"
        ),
    ];
    for n in 0..periods {
        let period = cycle.period(n).map_err(|e| e.to_string())?;
        let note = if frequency != Frequency::Weekly && period.end().day() != anchor.day() {
            format!(
                "  (day {} clamped to {})",
                anchor.day(),
                period.end().format("%b %-d")
            )
        } else {
            String::new()
        };
        lines.push(format!(
            "{n:>4}  {}  {}  {:>4}{note}",
            period.start().format("%Y-%m-%d %H:%M"),
            period.end().format("%Y-%m-%d %H:%M"),
            period.duration().num_days(),
        ));
    }
    lines.push(String::new());
    Ok(lines.join("\n"))
}

fn parse_anchor(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_time(chrono::NaiveTime::MIN).and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|instant| instant.with_timezone(&Utc))
        .map_err(|_| format!("invalid anchor: {text:?} is neither YYYY-MM-DD nor RFC 3339"))
}
