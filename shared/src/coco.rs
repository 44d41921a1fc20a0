//! What the local detector's classes mean for a move.
//!
//! The local backend runs a COCO detector (80 everyday classes, NanoDet). Only some of them are
//! things a mover quotes, several need the box's size to pick the catalogue item (a couch that
//! fills the frame is a three-seater), some say which room the camera is in (a bed, a fridge),
//! and most of the catalogue — wardrobes, chests of drawers, shelves, washing machines, boxes —
//! is not a COCO class at all. This module decides all three, so the origin only runs the network
//! and the customer is told plainly what local mode cannot see ([`blind_spots_warning`]).

use crate::{
    catalogue::{self, CatalogueItem},
    protocol::{Warning, WarningCode},
    rooms::Room,
};

/// The 80 COCO class names in the detector's output order.
pub const CLASSES: [&str; 80] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "backpack",
    "umbrella",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// Books the detector saw become book boxes: one box holds about this many books.
pub const BOOKS_PER_BOX: u32 = 20;

/// How a class is quoted: which catalogue item, and how many detections make one of it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Quote {
    pub item: &'static CatalogueItem,
    /// Detections per quoted unit: 1, except books (per box).
    pub per_unit: u32,
}

/// The COCO index of a class name.
pub fn class_index(name: &str) -> Option<usize> {
    CLASSES.iter().position(|class| *class == name)
}

/// The catalogue item a detection of `class` stands for, given the widest box of that class in
/// the room as a fraction of the frame's width (0–1). `None` for classes a mover does not quote
/// (people, tableware, small things that go into boxes) or fixtures (sinks, toilets).
pub fn quote(class: usize, widest: f64) -> Option<Quote> {
    let widest = if widest.is_finite() {
        widest.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let key = match CLASSES.get(class).copied()? {
        "bicycle" => "bicycle",
        "backpack" | "handbag" => "bag",
        "suitcase" => "suitcase",
        "chair" => "chair",
        // Filmed from across the room, a three-seater spans about half the frame.
        "couch" if widest < 0.45 => "sofa_2_seats",
        "couch" => "sofa_3_seats",
        "potted plant" => "plant",
        "bed" if widest < 0.35 => "single_bed",
        "bed" => "double_bed",
        "dining table" if widest < 0.4 => "dining_table_4",
        "dining table" => "dining_table_6",
        "tv" => "television",
        "laptop" => "computer",
        "microwave" => "microwave",
        "oven" => "oven",
        "toaster" => "small_appliance",
        "refrigerator" => "fridge",
        "book" => "box_books",
        _ => return None,
    };
    let item = catalogue::lookup(key)?;
    let per_unit = if key == "box_books" { BOOKS_PER_BOX } else { 1 };
    Some(Quote { item, per_unit })
}

/// The room a detected class says the camera is in, when it says one.
pub fn room_hint(class: usize) -> Option<Room> {
    Some(match CLASSES.get(class).copied()? {
        "bed" => Room::Bedroom,
        "couch" | "tv" => Room::LivingRoom,
        "refrigerator" | "oven" | "microwave" | "toaster" | "sink" => Room::Kitchen,
        "toilet" | "toothbrush" | "hair drier" => Room::Bathroom,
        _ => return None,
    })
}

/// Catalogue items no COCO class stands for, grouped the way a customer reads them. Every
/// catalogue item is either quotable from some class or in one of these groups (tested), so the
/// warning never hides a blind spot.
const BLIND_SPOTS: &[(&str, &str, &[&str])] = &[
    (
        "armoires et penderies",
        "wardrobes",
        &["wardrobe_1_door", "wardrobe_2_doors", "wardrobe_3_doors"],
    ),
    (
        "commodes, chevets, coiffeuses",
        "chests of drawers, bedside and dressing tables",
        &[
            "chest_of_drawers",
            "bedside_table",
            "dressing_table",
            "changing_table",
            "toy_chest",
        ],
    ),
    (
        "bibliothèques, étagères, buffets, meubles TV et de rangement",
        "bookcases, shelves, sideboards, TV stands and cabinets",
        &[
            "bookcase",
            "shelf_unit",
            "sideboard",
            "display_cabinet",
            "tv_stand",
            "filing_cabinet",
            "kitchen_cabinet",
            "bathroom_cabinet",
            "console_table",
            "shoe_cabinet",
            "metal_shelving",
        ],
    ),
    (
        "lave-linge, sèche-linge, lave-vaisselle, congélateurs, caves à vin, cuisinières",
        "washing machines, dryers, dishwashers, freezers, wine fridges, cookers",
        &[
            "washing_machine",
            "tumble_dryer",
            "dishwasher",
            "freezer",
            "cooker",
            "fridge_small",
            "fridge_american",
            "wine_cabinet",
            "vacuum_cleaner",
        ],
    ),
    (
        "cartons (hors livres vus)",
        "boxes (other than books seen)",
        &["box_standard", "box_large", "box_wardrobe"],
    ),
    (
        "canapés d'angle ou convertibles, fauteuils, poufs, bancs, tables basses ou en verre, tables 8 personnes",
        "corner sofas and sofa beds, armchairs, footstools, benches, coffee and glass tables, 8-seat tables",
        &[
            "corner_sofa",
            "dining_table_8",
            "sofa_bed",
            "armchair",
            "pouf",
            "bench",
            "coffee_table",
            "glass_table",
            "kitchen_table",
            "desk",
            "office_chair",
            "bar_stool",
            "high_chair",
        ],
    ),
    (
        "lits superposés, lits bébé, matelas",
        "bunk beds, cots, mattresses",
        &[
            "king_size_bed",
            "bunk_bed",
            "crib",
            "mattress_single",
            "mattress_double",
        ],
    ),
    (
        "pianos, billard, coffre-fort, machine à coudre",
        "pianos, pool table, safe, sewing machine",
        &[
            "piano_upright",
            "piano_grand",
            "pool_table",
            "safe",
            "sewing_machine",
        ],
    ),
    (
        "luminaires, tapis, miroirs, tableaux, aquarium, hi-fi, imprimante",
        "lamps, rugs, mirrors, paintings, aquarium, hi-fi, printer",
        &[
            "floor_lamp",
            "table_lamp",
            "rug",
            "mirror",
            "painting",
            "aquarium",
            "hifi_system",
            "printer",
        ],
    ),
    (
        "linge et ménage (étendoir, planche à repasser, panier), poussette",
        "laundry and cleaning (airer, ironing board, basket), pushchair",
        &[
            "drying_rack",
            "ironing_board",
            "laundry_basket",
            "coat_rack",
            "pushchair",
        ],
    ),
    (
        "garage et jardin (établi, outils, tondeuse, mobilier de jardin, appareils de sport)",
        "garage and garden (workbench, tools, mower, garden furniture, exercise machines)",
        &[
            "exercise_bike",
            "treadmill",
            "workbench",
            "tool_box",
            "lawn_mower",
            "garden_table",
            "garden_chair",
            "sun_lounger",
            "parasol",
            "barbecue",
        ],
    ),
];

/// The warning every local result carries: what the local model cannot see, to be added at the
/// review step.
pub fn blind_spots_warning(locale: &str) -> Warning {
    let english = catalogue::is_english(locale);
    let groups: Vec<&str> = BLIND_SPOTS
        .iter()
        .map(|(fr, en, _)| if english { *en } else { *fr })
        .collect();
    let message = if english {
        format!(
            "Local analysis: the on-premises model only recognises common objects (sofas, beds, \
             tables, chairs, TVs, fridges, ovens, plants, books…). It cannot see: {}. Add them \
             when you review the inventory.",
            groups.join("; ")
        )
    } else {
        format!(
            "Analyse locale : le modèle embarqué ne reconnaît que des objets courants (canapés, \
             lits, tables, chaises, téléviseurs, réfrigérateurs, fours, plantes, livres…). Il ne \
             voit pas : {}. Ajoutez-les en relisant l'inventaire.",
            groups.join(" ; ")
        )
    };
    Warning {
        code: WarningCode::LocalBlindSpots,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn class(name: &str) -> usize {
        class_index(name).unwrap()
    }

    fn key(name: &str, widest: f64) -> Option<&'static str> {
        quote(class(name), widest).map(|q| q.item.key)
    }

    #[test]
    fn furniture_classes_map_to_catalogue_items() {
        assert_eq!(key("refrigerator", 0.3), Some("fridge"));
        assert_eq!(key("oven", 0.3), Some("oven"));
        assert_eq!(key("microwave", 0.3), Some("microwave"));
        assert_eq!(key("tv", 0.3), Some("television"));
        assert_eq!(key("chair", 0.3), Some("chair"));
        assert_eq!(key("potted plant", 0.3), Some("plant"));
        assert_eq!(key("suitcase", 0.3), Some("suitcase"));
        assert_eq!(key("bicycle", 0.3), Some("bicycle"));
        assert_eq!(key("laptop", 0.3), Some("computer"));
        assert_eq!(quote(class("book"), 0.1).unwrap().per_unit, BOOKS_PER_BOX);
        assert_eq!(quote(class("chair"), 0.1).unwrap().per_unit, 1);
    }

    #[test]
    fn size_picks_the_variant() {
        assert_eq!(key("couch", 0.3), Some("sofa_2_seats"));
        assert_eq!(key("couch", 0.6), Some("sofa_3_seats"));
        assert_eq!(key("bed", 0.2), Some("single_bed"));
        assert_eq!(key("bed", 0.7), Some("double_bed"));
        assert_eq!(key("dining table", 0.2), Some("dining_table_4"));
        assert_eq!(key("dining table", 0.9), Some("dining_table_6"));
        assert_eq!(key("couch", f64::NAN), Some("sofa_2_seats"));
        assert_eq!(key("couch", 7.0), Some("sofa_3_seats"));
    }

    #[test]
    fn people_tableware_and_fixtures_are_not_quoted() {
        for name in [
            "person",
            "cup",
            "bowl",
            "sink",
            "toilet",
            "cat",
            "cell phone",
            "car",
        ] {
            assert_eq!(key(name, 0.5), None, "{name}");
        }
        assert!(quote(80, 0.5).is_none());
        assert!(room_hint(usize::MAX).is_none());
    }

    #[test]
    fn anchors_name_rooms() {
        assert_eq!(room_hint(class("bed")), Some(Room::Bedroom));
        assert_eq!(room_hint(class("refrigerator")), Some(Room::Kitchen));
        assert_eq!(room_hint(class("sink")), Some(Room::Kitchen));
        assert_eq!(room_hint(class("toilet")), Some(Room::Bathroom));
        assert_eq!(room_hint(class("couch")), Some(Room::LivingRoom));
        assert_eq!(room_hint(class("chair")), None);
    }

    #[test]
    fn every_catalogue_item_is_quotable_or_named_as_a_blind_spot() {
        let quotable: HashSet<&str> = (0..CLASSES.len())
            .flat_map(|c| [0.0, 0.3, 0.5, 1.0].map(|w| quote(c, w)))
            .flatten()
            .map(|q| q.item.key)
            .collect();
        let blind: Vec<&str> = BLIND_SPOTS
            .iter()
            .flat_map(|(_, _, keys)| *keys)
            .copied()
            .collect();
        for key in &blind {
            assert!(
                catalogue::lookup(key).is_some(),
                "{key} is not a catalogue key"
            );
            assert!(
                !quotable.contains(key),
                "{key} is quotable and listed as blind"
            );
        }
        for item in catalogue::items() {
            assert!(
                quotable.contains(item.key) || blind.contains(&item.key),
                "{} is neither quotable nor in the blind-spots warning",
                item.key
            );
        }
    }

    #[test]
    fn the_warning_names_wardrobes_drawers_shelves_washing_machines_and_boxes() {
        let fr = blind_spots_warning("fr").message;
        for word in [
            "armoires",
            "commodes",
            "étagères",
            "lave-linge",
            "cartons",
            "pianos",
            "coffre-fort",
        ] {
            assert!(fr.contains(word), "{word}: {fr}");
        }
        let en = blind_spots_warning("en-GB");
        assert_eq!(en.code, WarningCode::LocalBlindSpots);
        for word in [
            "wardrobes",
            "chests of drawers",
            "shelves",
            "washing machines",
            "boxes",
        ] {
            assert!(en.message.contains(word), "{word}: {}", en.message);
        }
    }

    proptest! {
        #[test]
        fn quote_is_total_and_size_monotonic(class in 0..90usize, a in -1.0..2.0f64, b in -1.0..2.0f64) {
            let (small, large) = if a <= b { (a, b) } else { (b, a) };
            match (quote(class, small), quote(class, large)) {
                (Some(s), Some(l)) => prop_assert!(s.item.volume_m3 <= l.item.volume_m3),
                (None, None) => {}
                _ => prop_assert!(false, "quotability must not depend on size"),
            }
        }
    }
}
