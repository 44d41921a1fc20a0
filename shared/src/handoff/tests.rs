use super::*;
use crate::lifecycle::Limits;
use crate::protocol::{AnalysisResult, Cost, Inventory, MediaFacts, UploadMeta};

/// 2026-12-01T08:00:00Z.
const NOW: Millis = 1_796_112_000_000;

fn contact() -> Contact {
    Contact {
        name: "  Camille   Martin ".into(),
        email: Some(" camille@example.fr ".into()),
        phone: Some("".into()),
        move_date: "2027-01-15".into(),
        from_postcode: "75011".into(),
        to_postcode: " 69003 ".into(),
    }
}

fn completed() -> Session {
    let limits = Limits::default();
    let meta = UploadMeta {
        filename: None,
        filetype: "video/mp4".into(),
        locale: "fr".into(),
    };
    let mut session = Session::new("s".repeat(64), Some(0), meta, NOW, &limits);
    session.status = Status::Completed;
    session.seq = 7;
    session.result = Some(AnalysisResult {
        inventory: crate::fusion::fuse(&crate::fusion::FusionInput {
            vision: crate::protocol::VisionResult {
                rooms: vec![crate::protocol::VisionRoom {
                    name: "salon".into(),
                    items: vec![crate::protocol::VisionItem {
                        key: "sofa_3_seats".into(),
                        label: String::new(),
                        quantity: 1,
                        estimated_volume_m3: None,
                        confidence: 0.9,
                        frames: vec![],
                    }],
                }],
            },
            directives: Default::default(),
            media: MediaFacts::default(),
            mean_luma: None,
            sharpness: None,
            narrated: true,
            margin_ratio: 0.1,
            locale: "fr".into(),
        }),
        media: MediaFacts::default(),
        cost: Cost::default(),
        vision_model: "v".into(),
        transcription_model: "t".into(),
        analyser: crate::protocol::Analyser::Openai,
        simulated: true,
        processing_ms: 1,
    });
    session
}

#[test]
fn a_valid_contact_is_normalised() {
    let valid = validate(&contact(), NOW).unwrap();
    assert_eq!(valid.name, "Camille Martin");
    assert_eq!(valid.email.as_deref(), Some("camille@example.fr"));
    assert_eq!(valid.phone, None);
    assert_eq!(valid.to_postcode, "69003");
    let phone_only = Contact {
        email: None,
        phone: Some("+33 6 12 34 56 78".into()),
        from_postcode: "sw1a 1aa".into(),
        ..contact()
    };
    let valid = validate(&phone_only, NOW).unwrap();
    assert_eq!(valid.from_postcode, "SW1A 1AA");
}

#[test]
fn every_wrong_field_is_reported_at_once() {
    let bad = Contact {
        name: " 42 ".into(),
        email: Some("camille@".into()),
        phone: Some("06 12".into()),
        move_date: "2027-02-30".into(),
        from_postcode: "ABCDE".into(),
        to_postcode: "".into(),
    };
    assert_eq!(
        validate(&bad, NOW).unwrap_err(),
        vec![
            ContactField::Name,
            ContactField::Email,
            ContactField::Phone,
            ContactField::MoveDate,
            ContactField::FromPostcode,
            ContactField::ToPostcode,
        ]
    );
    let unreachable = Contact {
        email: None,
        phone: None,
        ..contact()
    };
    assert_eq!(
        validate(&unreachable, NOW).unwrap_err(),
        vec![ContactField::Reach]
    );
}

#[test]
fn emails_phones_postcodes_and_dates() {
    for good in ["a@b.fr", "camille.martin+move@mail.example.com"] {
        assert!(is_email(good), "{good}");
    }
    for bad in [
        "", "a@b", "a@@b.fr", "@b.fr", "a b@c.fr", "a@b..fr", "a@.fr",
    ] {
        assert!(!is_email(bad), "{bad}");
    }
    for good in ["0612345678", "+33 (0)6 12 34 56 78", "06.12.34.56.78"] {
        assert!(is_phone(good), "{good}");
    }
    for bad in [
        "0612",
        "06-12-34-56-78-90-12-34",
        "33+612345678",
        "06 12 34 ab",
    ] {
        assert!(!is_phone(bad), "{bad}");
    }
    assert_eq!(parse_date("1970-01-01"), None, "before 2000");
    assert_eq!(parse_date("2000-03-01"), Some(11_017));
    assert_eq!(parse_date("2024-02-29"), Some(19_782));
    assert_eq!(parse_date("2023-02-29"), None);
    assert_eq!(parse_date("2027-1-15"), None);
    assert_eq!(parse_date("2027-01-15-1"), None);
    // Yesterday is tolerated (time zones), the day before is not.
    let today = days_since_epoch(NOW);
    assert_eq!(parse_date("2026-12-01"), Some(today));
    let date = |d: &str| {
        validate(
            &Contact {
                move_date: d.into(),
                ..contact()
            },
            NOW,
        )
    };
    assert!(date("2026-11-30").is_ok());
    assert_eq!(
        date("2026-11-29").unwrap_err(),
        vec![ContactField::MoveDate]
    );
}

#[test]
fn confirming_recomputes_stores_and_broadcasts_then_an_edit_withdraws() {
    let mut session = completed();
    let mut review = Review::default();
    let base = session.result.clone().unwrap().inventory;
    let sofa = base.rooms[0].lines[0].id;
    let request = ConfirmRequest {
        edits: vec![Edit::SetQuantity {
            line: sofa,
            quantity: 2,
        }],
        contact: contact(),
    };
    let (handoff, effects) = review.confirm(&mut session, &request, NOW).unwrap();
    assert_eq!(handoff.revision, 1);
    assert_eq!(handoff.contact.name, "Camille Martin");
    assert_eq!(handoff.inventory.item_count, 2);
    assert_eq!(
        handoff.inventory,
        edits::apply(&base, &request.edits, "fr").unwrap()
    );
    assert_eq!(session.seq, 8);
    let Effect::Broadcast {
        seq: 8,
        event: SessionEvent::Confirmed { confirmed },
    } = &effects[0]
    else {
        panic!("{effects:?}")
    };
    assert_eq!(confirmed.inventory, handoff.inventory);
    let stored = review.confirmation.clone().unwrap();
    assert_eq!(stored.edits, request.edits);
    assert_eq!(stored.contact, handoff.contact);

    assert_eq!(
        review.withdraw(&mut session),
        vec![Effect::Broadcast {
            seq: 9,
            event: SessionEvent::Unconfirmed
        }]
    );
    assert!(review.confirmation.is_none());
    assert!(review.withdraw(&mut session).is_empty(), "once");
    let (again, _) = review.confirm(&mut session, &request, NOW).unwrap();
    assert_eq!(again.revision, 2);
    review.clear();
    assert_eq!(review, Review::default());
}

#[test]
fn nothing_changes_when_a_confirmation_is_refused() {
    let mut session = completed();
    let mut review = Review::default();
    let bad_contact = ConfirmRequest {
        edits: vec![],
        contact: Contact {
            email: None,
            ..contact()
        },
    };
    assert_eq!(
        review.confirm(&mut session, &bad_contact, NOW).unwrap_err(),
        ConfirmError::Contact(vec![ContactField::Reach])
    );
    let bad_edit = ConfirmRequest {
        edits: vec![Edit::Remove { line: 404 }],
        contact: contact(),
    };
    assert!(matches!(
        review.confirm(&mut session, &bad_edit, NOW),
        Err(ConfirmError::Edits(_))
    ));
    session.status = Status::Processing;
    let fine = ConfirmRequest {
        edits: vec![],
        contact: contact(),
    };
    assert_eq!(
        review.confirm(&mut session, &fine, NOW).unwrap_err(),
        ConfirmError::NotCompleted
    );
    assert_eq!((review, session.seq), (Review::default(), 7));
}

#[test]
fn an_empty_inventory_is_still_a_valid_confirmation() {
    let mut session = completed();
    session.result.as_mut().unwrap().inventory = Inventory {
        rooms: vec![],
        subtotal_m3: 0.0,
        margin_ratio: 0.1,
        margin_m3: 0.0,
        total_m3: 0.0,
        total_weight_kg: 0.0,
        item_count: 0,
        flagged: vec![],
        warnings: vec![],
    };
    let request = ConfirmRequest {
        edits: vec![],
        contact: contact(),
    };
    let (handoff, _) = Review::default()
        .confirm(&mut session, &request, NOW)
        .unwrap();
    assert_eq!(handoff.inventory.total_m3, 0.0);
}
