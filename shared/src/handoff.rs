//! The confirmation of a reviewed inventory and what the mover receives.
//!
//! A mover quotes from an inventory the customer has checked, and calls back someone who asked
//! to be called: so the hand-off happens once the customer confirms, with the few details a
//! mover needs (name, an email or a phone, the move date, both postcodes) and nothing else. The
//! edge decides here: the contact is checked field by field, the inventory is recomputed from the
//! session's result and the customer's [`Edit`] list ([`crate::edits::apply`]), never taken from
//! the browser, and any edit after a confirmation withdraws it (the mover must not quote from an
//! inventory the customer has since changed). [`Review`] is the part of the session record that
//! holds this; it is emptied with the rest of the session at retention.

use crate::edits::{self, EditError};
use crate::lifecycle::{Effect, Session};
use crate::protocol::{
    ConfirmRequest, Confirmed, Contact, ContactField, Edit, Handoff, Millis, SessionEvent, Status,
};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// RFC 5321's limit on a forward path.
pub const MAX_EMAIL_CHARS: usize = 254;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ConfirmError {
    #[error("only a completed analysis can be confirmed")]
    NotCompleted,
    #[error("invalid contact fields: {0:?}")]
    Contact(Vec<ContactField>),
    #[error(transparent)]
    Edits(#[from] EditError),
}

/// What a confirmation leaves in the session record until retention.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Confirmation {
    pub confirmed: Confirmed,
    pub contact: Contact,
    pub edits: Vec<Edit>,
}

/// The review state of one session.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct Review {
    /// Confirmations so far; the next one gets `revision + 1`.
    pub revision: u32,
    pub confirmation: Option<Confirmation>,
}

impl Review {
    /// Confirms `request` against the session's result at `now`: on success the confirmation is
    /// stored, a `confirmed` event is broadcast (with the session's next `seq`), and the returned
    /// hand-off is what the edge sends to the origin. On error nothing changes.
    pub fn confirm(
        &mut self,
        session: &mut Session,
        request: &ConfirmRequest,
        now: Millis,
    ) -> Result<(Handoff, Vec<Effect>), ConfirmError> {
        let result = match (&session.status, &session.result) {
            (Status::Completed, Some(result)) => result,
            _ => return Err(ConfirmError::NotCompleted),
        };
        let contact = validate(&request.contact, now).map_err(ConfirmError::Contact)?;
        let locale = session.meta.locale.clone();
        let inventory = edits::apply(&result.inventory, &request.edits, &locale)?;
        let confirmed = Confirmed {
            revision: self.revision + 1,
            confirmed_at: now,
            inventory,
        };
        let handoff = Handoff {
            session_id: session.id.clone(),
            revision: confirmed.revision,
            confirmed_at: now,
            locale,
            contact: contact.clone(),
            inventory: confirmed.inventory.clone(),
        };
        self.revision = confirmed.revision;
        self.confirmation = Some(Confirmation {
            confirmed: confirmed.clone(),
            contact,
            edits: request.edits.clone(),
        });
        let effect = broadcast(
            session,
            SessionEvent::Confirmed {
                confirmed: Box::new(confirmed),
            },
        );
        Ok((handoff, vec![effect]))
    }

    /// An edit after confirming: the confirmation is withdrawn (an `unconfirmed` event). Without
    /// a confirmation, nothing happens.
    pub fn withdraw(&mut self, session: &mut Session) -> Vec<Effect> {
        if self.confirmation.take().is_none() {
            return Vec::new();
        }
        vec![broadcast(session, SessionEvent::Unconfirmed)]
    }

    /// Forgets the contact and the confirmed inventory (retention, purge).
    pub fn clear(&mut self) {
        *self = Review::default();
    }
}

fn broadcast(session: &mut Session, event: SessionEvent) -> Effect {
    session.seq += 1;
    Effect::Broadcast {
        seq: session.seq,
        event,
    }
}

/// The contact as stored: trimmed, empty optional fields as `None`, postcodes upper case. Every
/// wrong field is reported at once, so the page marks them all.
pub fn validate(form: &Contact, now: Millis) -> Result<Contact, Vec<ContactField>> {
    let mut wrong = Vec::new();
    let name = collapse(&form.name);
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || !name.chars().any(char::is_alphabetic)
    {
        wrong.push(ContactField::Name);
    }
    let email = optional(&form.email);
    if email.as_deref().is_some_and(|e| !is_email(e)) {
        wrong.push(ContactField::Email);
    }
    let phone = optional(&form.phone);
    if phone.as_deref().is_some_and(|p| !is_phone(p)) {
        wrong.push(ContactField::Phone);
    }
    if email.is_none() && phone.is_none() {
        wrong.push(ContactField::Reach);
    }
    let move_date = form.move_date.trim().to_string();
    if parse_date(&move_date).is_none_or(|day| day + 1 < days_since_epoch(now)) {
        wrong.push(ContactField::MoveDate);
    }
    let from_postcode = postcode(&form.from_postcode);
    if !is_postcode(&from_postcode) {
        wrong.push(ContactField::FromPostcode);
    }
    let to_postcode = postcode(&form.to_postcode);
    if !is_postcode(&to_postcode) {
        wrong.push(ContactField::ToPostcode);
    }
    if !wrong.is_empty() {
        return Err(wrong);
    }
    Ok(Contact {
        name,
        email,
        phone,
        move_date,
        from_postcode,
        to_postcode,
    })
}

fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn optional(text: &Option<String>) -> Option<String> {
    text.as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(String::from)
}

/// One `@`, a non-empty local part, a dotted domain, no spaces: enough to call back, without
/// pretending to implement RFC 5322.
fn is_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.chars().count() <= MAX_EMAIL_CHARS
        && !local.is_empty()
        && !domain.contains('@')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}

/// 8 to 15 digits (E.164 allows 15), separators ` .-()` and one leading `+`.
fn is_phone(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = phone.chars().enumerate().all(|(i, c)| {
        c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '(' | ')') || (c == '+' && i == 0)
    });
    allowed && (8..=15).contains(&digits)
}

fn postcode(text: &str) -> String {
    collapse(text).to_uppercase()
}

/// French postcodes are five digits; a move may cross a border, so any 3–10 letters, digits,
/// spaces or dashes with at least one digit (UK, Belgian, Swiss, German codes all fit).
fn is_postcode(code: &str) -> bool {
    (3..=10).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == ' ' || c == '-')
        && code.chars().any(|c| c.is_ascii_digit())
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date in 2000–2100.
fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(2000..=2100).contains(&y) || !(1..=12).contains(&m) {
        return None;
    }
    if d == 0 || d > month_days[m as usize - 1] {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

fn days_since_epoch(now: Millis) -> i64 {
    (now / 86_400_000) as i64
}

/// Howard Hinnant's `days_from_civil`: days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests;
