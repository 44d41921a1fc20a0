use super::*;
use crate::fusion::{fuse, FusionInput};
use crate::protocol::{
    Directive, DirectiveAction, ItemFlag, MediaFacts, VisionItem, VisionResult, VisionRoom,
    VoiceDirectives,
};
use proptest::prelude::*;

fn seen(key: &str, quantity: u32) -> VisionItem {
    VisionItem {
        key: key.into(),
        label: String::new(),
        quantity,
        estimated_volume_m3: None,
        confidence: 0.9,
        frames: vec![0],
    }
}

fn fused(rooms: Vec<(&str, Vec<VisionItem>)>, directives: Vec<Directive>) -> Inventory {
    fuse(&FusionInput {
        vision: VisionResult {
            rooms: rooms
                .into_iter()
                .map(|(name, items)| VisionRoom {
                    name: name.into(),
                    items,
                })
                .collect(),
        },
        directives: VoiceDirectives { directives },
        media: MediaFacts {
            duration_s: 60.0,
            width: 1280,
            height: 720,
            rotation: 0,
            has_audio: true,
            frames_analysed: 12,
            frame_times_s: Vec::new(),
        },
        mean_luma: Some(120.0),
        sharpness: Some(0.8),
        narrated: true,
        margin_ratio: 0.1,
        locale: "fr".into(),
    })
}

/// The simulator's flat: a living room and a bedroom, plus fifteen book boxes said aloud.
fn sample() -> Inventory {
    fused(
        vec![
            (
                "salon",
                vec![
                    seen("sofa_3_seats", 1),
                    seen("coffee_table", 1),
                    seen("box_standard", 3),
                ],
            ),
            ("chambre", vec![seen("double_bed", 1)]),
        ],
        vec![Directive {
            action: DirectiveAction::Add,
            key: "box_books".into(),
            label: String::new(),
            quantity: Some(15),
            room: Some("salon".into()),
            estimated_volume_m3: None,
            note: None,
        }],
    )
}

fn line(inventory: &Inventory, id: u32) -> Option<(&str, &InventoryLine)> {
    inventory.rooms.iter().find_map(|room| {
        room.lines
            .iter()
            .find(|line| line.id == id)
            .map(|line| (room.room.as_str(), line))
    })
}

fn id_of(inventory: &Inventory, key: &str) -> u32 {
    inventory
        .rooms
        .iter()
        .flat_map(|room| &room.lines)
        .find(|line| line.key == key)
        .unwrap()
        .id
}

#[test]
fn no_edit_gives_the_model_inventory_unchanged() {
    let base = sample();
    assert_eq!(apply(&base, &[], "fr").unwrap(), base);
}

#[test]
fn the_issue_scenario_adds_up() {
    let base = sample();
    let boxes = id_of(&base, "box_standard");
    let table = id_of(&base, "coffee_table");
    let bed = id_of(&base, "double_bed");
    let edits = vec![
        Edit::SetQuantity {
            line: boxes,
            quantity: 10,
        },
        Edit::Remove { line: table },
        Edit::AddItem {
            line: 100,
            room: "Salon".into(),
            key: "piano_upright".into(),
            quantity: 1,
        },
        Edit::Move {
            line: bed,
            room: "chambre 2".into(),
        },
    ];
    let edited = apply(&base, &edits, "fr").unwrap();
    let (room, boxes_line) = line(&edited, boxes).unwrap();
    assert_eq!(
        (room, boxes_line.quantity, boxes_line.source),
        ("Salon", 10, ItemSource::Corrected)
    );
    assert!((boxes_line.volume_m3 - 0.6).abs() < 1e-12);
    assert!(line(&edited, table).is_none());
    let (room, piano) = line(&edited, 100).unwrap();
    assert_eq!(
        (room, piano.label.as_str(), piano.source),
        ("Salon", "Piano droit", ItemSource::Added)
    );
    assert_eq!(piano.flags, vec![ItemFlag::Fragile, ItemFlag::Heavy]);
    assert_eq!(line(&edited, bed).unwrap().0, "Chambre 2");
    // The bedroom is empty and disappears; the new room comes last.
    let rooms: Vec<&str> = edited.rooms.iter().map(|r| r.room.as_str()).collect();
    assert_eq!(rooms, vec!["Salon", "Chambre 2"]);
    // sofa 2 + boxes 10×0.06 + books 15×0.03 + piano 1.5 + bed 2.5
    let subtotal = 2.0 + 0.6 + 0.45 + 1.5 + 2.5;
    assert!(
        (edited.subtotal_m3 - subtotal).abs() < 1e-9,
        "{}",
        edited.subtotal_m3
    );
    assert_eq!(edited.total_m3, edited.subtotal_m3 + edited.margin_m3);
    assert_eq!(edited.total_weight_kg, 55.0 + 150.0 + 225.0 + 250.0 + 60.0);
    assert_eq!(edited.item_count, 1 + 10 + 15 + 1 + 1);
    let flagged: Vec<u32> = edited.flagged.iter().map(|f| f.line).collect();
    assert_eq!(flagged, vec![100, bed]);
}

#[test]
fn a_quantity_set_back_to_the_models_is_no_longer_corrected() {
    let base = sample();
    let sofa = id_of(&base, "sofa_3_seats");
    let edits = [
        Edit::SetQuantity {
            line: sofa,
            quantity: 2,
        },
        Edit::SetQuantity {
            line: sofa,
            quantity: 1,
        },
    ];
    assert_eq!(apply(&base, &edits, "fr").unwrap(), base);
}

#[test]
fn quantities_are_capped_and_zero_hides_the_line() {
    let base = sample();
    let sofa = id_of(&base, "sofa_3_seats");
    let capped = apply(
        &base,
        &[Edit::SetQuantity {
            line: sofa,
            quantity: u32::MAX,
        }],
        "fr",
    )
    .unwrap();
    assert_eq!(line(&capped, sofa).unwrap().1.quantity, MAX_QUANTITY);
    let zero = apply(
        &base,
        &[Edit::SetQuantity {
            line: sofa,
            quantity: 0,
        }],
        "fr",
    )
    .unwrap();
    assert!(line(&zero, sofa).is_none());
    assert!(zero.total_m3 < base.total_m3);
}

#[test]
fn a_free_item_is_clamped_like_a_model_estimate_and_weighed_from_its_volume() {
    let base = sample();
    let free = |volume: f64, weight: Option<f64>| {
        let edited = apply(
            &base,
            &[Edit::AddFree {
                line: 50,
                room: "cave".into(),
                label: "  statue   en bronze ".into(),
                unit_volume_m3: volume,
                unit_weight_kg: weight,
                quantity: 2,
            }],
            "fr",
        )
        .unwrap();
        let (room, line) = line(&edited, 50).unwrap();
        assert_eq!(
            (room, line.label.as_str(), line.key.as_str()),
            ("Cave", "Statue en bronze", "other")
        );
        (line.unit_volume_m3, line.unit_weight_kg, line.volume_m3)
    };
    assert_eq!(free(0.4, None), (0.4, 0.4 * catalogue::KG_PER_M3, 0.8));
    assert_eq!(free(0.4, Some(80.0)), (0.4, 80.0, 0.8));
    assert_eq!(free(500.0, Some(1e9)).0, MAX_OTHER_VOLUME_M3);
    assert_eq!(free(500.0, Some(1e9)).1, MAX_FREE_WEIGHT_KG);
    assert_eq!(free(-3.0, Some(-1.0)), (0.0, 0.0, 0.0));
    assert_eq!(free(f64::NAN, Some(f64::INFINITY)), (0.0, 0.0, 0.0));
}

#[test]
fn renaming_onto_a_room_with_items_is_refused_but_onto_an_emptied_one_is_undoable() {
    let base = sample();
    let taken = apply(
        &base,
        &[Edit::RenameRoom {
            room: "salon".into(),
            to: "CHAMBRE".into(),
        }],
        "fr",
    );
    assert!(matches!(taken, Err(EditError::RoomTaken { index: 0, .. })));
    let bed = id_of(&base, "double_bed");
    let edits = vec![
        Edit::Move {
            line: bed,
            room: "Salon".into(),
        },
        Edit::RenameRoom {
            room: "Salon".into(),
            to: "chambre".into(),
        },
    ];
    let edited = apply(&base, &edits, "fr").unwrap();
    let rooms: Vec<&str> = edited.rooms.iter().map(|r| r.room.as_str()).collect();
    assert_eq!(rooms, vec!["Chambre"]);
    let mut all = edits.clone();
    all.extend(undo(&base, &edits, "fr").unwrap());
    assert_eq!(apply(&base, &all, "fr").unwrap(), base);
}

#[test]
fn bad_edits_are_refused_with_their_index() {
    let base = sample();
    let sofa = id_of(&base, "sofa_3_seats");
    let err = |edits: &[Edit]| apply(&base, edits, "fr").unwrap_err();
    assert_eq!(
        err(&[Edit::Remove { line: 999 }]),
        EditError::UnknownLine {
            index: 0,
            line: 999
        }
    );
    let add = |line: u32, key: &str| Edit::AddItem {
        line,
        room: "Salon".into(),
        key: key.into(),
        quantity: 1,
    };
    assert_eq!(
        err(&[add(77, "chair"), add(77, "chair")]),
        EditError::DuplicateLine { index: 1, line: 77 }
    );
    assert_eq!(
        err(&[add(sofa, "chair")]),
        EditError::DuplicateLine {
            index: 0,
            line: sofa
        }
    );
    assert!(matches!(
        err(&[add(78, "piano droit")]),
        EditError::UnknownItem { .. }
    ));
    assert!(matches!(
        err(&[Edit::Move {
            line: sofa,
            room: " ".into()
        }]),
        EditError::BadName { index: 0 }
    ));
    assert!(matches!(
        err(&[Edit::Move {
            line: sofa,
            room: "x".repeat(MAX_NAME_CHARS + 1)
        }]),
        EditError::BadName { index: 0 }
    ));
    assert!(matches!(
        err(&[Edit::RenameRoom {
            room: "grenier".into(),
            to: "cave".into()
        }]),
        EditError::UnknownRoom { .. }
    ));
    let many = vec![Edit::Restore { line: sofa }; MAX_EDITS + 1];
    assert_eq!(err(&many), EditError::TooMany);
}

#[test]
fn labels_of_added_items_follow_the_locale() {
    let base = sample();
    let edits = [Edit::AddItem {
        line: 9,
        room: "Salon".into(),
        key: "fridge".into(),
        quantity: 1,
    }];
    let en = apply(&base, &edits, "en-GB").unwrap();
    assert_eq!(line(&en, 9).unwrap().1.label, "Fridge");
}

#[test]
fn edits_round_trip_as_tagged_json() {
    let edit = Edit::AddFree {
        line: 3,
        room: "Cave".into(),
        label: "Statue".into(),
        unit_volume_m3: 0.4,
        unit_weight_kg: None,
        quantity: 1,
    };
    let text = serde_json::to_string(&edit).unwrap();
    assert!(text.starts_with(r#"{"type":"add_free","line":3"#), "{text}");
    assert_eq!(serde_json::from_str::<Edit>(&text).unwrap(), edit);
    assert!(
        serde_json::from_str::<Edit>(r#"{"type":"set_quantity","line":1,"quantity":-1}"#).is_err()
    );
}

// Property tests: random model inventories, random valid edit lists.

fn any_base() -> impl Strategy<Value = Inventory> {
    let keys: Vec<&'static str> = catalogue::items().iter().map(|item| item.key).collect();
    let item = (
        prop_oneof![
            6 => proptest::sample::select(keys).prop_map(String::from),
            1 => Just("other".to_string()),
        ],
        prop_oneof![
            Just(String::new()),
            Just("statue".to_string()),
            Just("vélo".to_string())
        ],
        1..6u32,
        proptest::option::of(0.0..4.0f64),
    )
        .prop_map(|(key, label, quantity, estimate)| VisionItem {
            estimated_volume_m3: estimate,
            label,
            ..seen(&key, quantity)
        });
    let room = (
        proptest::sample::select(vec!["salon", "cuisine", "chambre", "chambre 2", "cave"]),
        proptest::collection::vec(item, 0..5),
    );
    (proptest::collection::vec(room, 0..5), 0.0..0.3f64).prop_map(|(rooms, margin)| {
        let mut inventory = fused(rooms, vec![]);
        // Any margin the edge may have used.
        inventory.margin_ratio = margin;
        inventory = apply(&inventory, &[], "fr").unwrap();
        inventory
    })
}

/// An edit drawn from raw numbers against what the list has built so far.
#[derive(Clone, Debug)]
struct Seed {
    kind: u8,
    pick: usize,
    quantity: u32,
    room: usize,
    volume: f64,
}

fn any_seeds() -> impl Strategy<Value = Vec<Seed>> {
    proptest::collection::vec(
        (
            0..7u8,
            any::<usize>(),
            0..30u32,
            any::<usize>(),
            0.0..5.0f64,
        )
            .prop_map(|(kind, pick, quantity, room, volume)| Seed {
                kind,
                pick,
                quantity,
                room,
                volume,
            }),
        0..25,
    )
}

const ROOMS: [&str; 6] = ["Salon", "cave", "Chambre 2", "bureau", "Grenier", "salon"];

/// Valid edits for `base`: each seed becomes an edit on a line or room that exists at that
/// point; a seed whose edit is refused (a rename onto a room with items) is dropped.
fn edits_for(base: &Inventory, seeds: &[Seed]) -> Vec<Edit> {
    let mut edits = Vec::new();
    let mut ids: Vec<u32> = base
        .rooms
        .iter()
        .flat_map(|room| room.lines.iter().map(|line| line.id))
        .collect();
    let keys = catalogue::items();
    for (n, seed) in seeds.iter().enumerate() {
        let line = if ids.is_empty() {
            None
        } else {
            Some(ids[seed.pick % ids.len()])
        };
        let room = ROOMS[seed.room % ROOMS.len()].to_string();
        let new_id = 10_000 + n as u32;
        let edit = match (seed.kind, line) {
            (0, Some(line)) => Edit::SetQuantity {
                line,
                quantity: seed.quantity,
            },
            (1, Some(line)) => Edit::Remove { line },
            (2, Some(line)) => Edit::Restore { line },
            (3, _) => Edit::AddItem {
                line: new_id,
                room,
                key: keys[seed.pick % keys.len()].key.to_string(),
                quantity: seed.quantity,
            },
            (4, _) => Edit::AddFree {
                line: new_id,
                room,
                label: "Statue".into(),
                unit_volume_m3: seed.volume,
                unit_weight_kg: (seed.pick % 2 == 0).then_some(seed.volume * 20.0),
                quantity: seed.quantity,
            },
            (5, Some(line)) => Edit::Move { line, room },
            (6, _) => {
                let current = apply(base, &edits, "fr").unwrap();
                if current.rooms.is_empty() {
                    continue;
                }
                let from = &current.rooms[seed.pick % current.rooms.len()].room;
                Edit::RenameRoom {
                    room: from.clone(),
                    to: room,
                }
            }
            _ => continue,
        };
        edits.push(edit);
        if apply(base, &edits, "fr").is_err() {
            edits.pop();
        } else if matches!(seed.kind, 3 | 4) {
            ids.push(new_id);
        }
    }
    edits
}

fn lines(inventory: &Inventory) -> impl Iterator<Item = &InventoryLine> {
    inventory.rooms.iter().flat_map(|room| room.lines.iter())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn applying_edits_then_their_undo_gives_the_original(base in any_base(), seeds in any_seeds()) {
        let edits = edits_for(&base, &seeds);
        let mut all = edits.clone();
        all.extend(undo(&base, &edits, "fr").unwrap());
        prop_assert_eq!(apply(&base, &all, "fr").unwrap(), base);
    }

    #[test]
    fn totals_are_the_sum_of_lines_plus_margin(base in any_base(), seeds in any_seeds()) {
        let edits = edits_for(&base, &seeds);
        let inventory = apply(&base, &edits, "fr").unwrap();
        let volume = lines(&inventory).fold(0.0, |sum, line| sum + line.volume_m3);
        let weight = lines(&inventory).fold(0.0, |sum, line| sum + line.weight_kg);
        prop_assert!((inventory.subtotal_m3 - volume).abs() <= 1e-9);
        prop_assert!((inventory.total_weight_kg - weight).abs() <= 1e-6);
        prop_assert_eq!(inventory.total_m3, inventory.subtotal_m3 + inventory.margin_m3);
        prop_assert_eq!(inventory.margin_m3, inventory.subtotal_m3 * inventory.margin_ratio);
        prop_assert_eq!(inventory.margin_ratio, base.margin_ratio);
        let rooms = inventory.rooms.iter().fold(0.0, |sum, room| sum + room.subtotal_m3);
        prop_assert_eq!(inventory.subtotal_m3, rooms);
        for room in &inventory.rooms {
            let sum = room.lines.iter().fold(0.0, |sum, line| sum + line.volume_m3);
            prop_assert_eq!(room.subtotal_m3, sum);
            prop_assert!(!room.lines.is_empty() || !room.notes.is_empty());
        }
        for line in lines(&inventory) {
            prop_assert!((1..=MAX_QUANTITY).contains(&line.quantity));
            prop_assert_eq!(line.volume_m3, line.unit_volume_m3 * f64::from(line.quantity));
            prop_assert!(line.volume_m3.is_finite() && line.volume_m3 >= 0.0);
            prop_assert!(line.weight_kg.is_finite() && line.weight_kg >= 0.0);
        }
        let count = lines(&inventory).map(|line| line.quantity).sum::<u32>();
        prop_assert_eq!(inventory.item_count, count);
        let flagged = lines(&inventory).filter(|line| !line.flags.is_empty()).count();
        prop_assert_eq!(inventory.flagged.len(), flagged);
        let mut ids: Vec<u32> = lines(&inventory).map(|line| line.id).collect();
        let before = ids.len();
        ids.sort_unstable();
        ids.dedup();
        prop_assert_eq!(ids.len(), before, "line ids stay unique");
    }

    #[test]
    fn untouched_lines_keep_their_source_and_touched_ones_say_so(base in any_base(), seeds in any_seeds()) {
        let edits = edits_for(&base, &seeds);
        let inventory = apply(&base, &edits, "fr").unwrap();
        for line in lines(&inventory) {
            match lines(&base).find(|b| b.id == line.id) {
                None => prop_assert_eq!(line.source, ItemSource::Added),
                Some(b) if b.quantity != line.quantity => prop_assert_eq!(line.source, ItemSource::Corrected),
                Some(b) => prop_assert_eq!(line.source, b.source),
            }
        }
    }

    #[test]
    fn apply_never_panics_on_arbitrary_edits(base in any_base(), raw in proptest::collection::vec((0..7u8, 0..40u32, "\\PC{0,12}", -1e9..1e9f64), 0..12)) {
        let edits: Vec<Edit> = raw.into_iter().map(|(kind, line, text, number)| match kind {
            0 => Edit::SetQuantity { line, quantity: number.abs() as u32 },
            1 => Edit::Remove { line },
            2 => Edit::Restore { line },
            3 => Edit::AddItem { line, room: text.clone(), key: text, quantity: line },
            4 => Edit::AddFree { line, room: text.clone(), label: text, unit_volume_m3: number, unit_weight_kg: Some(number), quantity: line },
            5 => Edit::Move { line, room: text },
            _ => Edit::RenameRoom { room: text.clone(), to: text },
        }).collect();
        if let Ok(inventory) = apply(&base, &edits, "fr") {
            prop_assert!(inventory.total_m3.is_finite() && inventory.total_m3 >= 0.0);
            prop_assert!(inventory.total_weight_kg.is_finite() && inventory.total_weight_kg >= 0.0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    /// The edge stores the result as JSON and the origin re-serialises hand-offs: numbers must
    /// survive exactly (serde_json's `float_roundtrip`), or the mover's totals drift by an ulp.
    #[test]
    fn an_edited_inventory_survives_json_exactly(base in any_base(), seeds in any_seeds()) {
        let edits = edits_for(&base, &seeds);
        let inventory = apply(&base, &edits, "fr").unwrap();
        let text = serde_json::to_string(&inventory).unwrap();
        let back: Inventory = serde_json::from_str(&text).unwrap();
        prop_assert_eq!(back, inventory);
    }
}
