//! The deterministic volume catalogue.
//!
//! A mover quotes from volumes, and volumes must not depend on what a model guesses from a
//! photo: the same wardrobe must weigh 2 m³ in every inventory. So the vision model only
//! *recognises* items (its JSON schema's enum is [`schema_keys`]) and the volume comes from this
//! table, built from the values public French movers' tables agree on (each item names its
//! [`CatalogueItem::source`]). Only `other` items keep a model estimate, and fusion flags them.
//!
//! Keys are stable snake_case English: they are part of the model schema, of stored results and
//! of the client's labels, so an item may gain aliases but never change its key.
//!
//! [`lookup`] accepts a key, a label or an alias in French or English, and is forgiving the way
//! speech and models are: case, accents, punctuation, a leading article and simple plurals are
//! ignored ("Les Cartons de livres" finds `box_books`). The table is small, so lookup is a linear
//! scan over a static slice: no allocation at start-up, nothing to initialise on wasm.

use serde::Serialize;

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Furniture,
    Appliance,
    Box,
    Electronics,
    Decor,
    Outdoor,
    Other,
}

/// One item movers quote. `key` is stable: it is part of the vision model's JSON schema.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct CatalogueItem {
    pub key: &'static str,
    pub label_fr: &'static str,
    pub label_en: &'static str,
    pub aliases: &'static [&'static str],
    pub volume_m3: f64,
    pub category: Category,
    /// Where the item usually stands ("salon", "cuisine"…), in French.
    pub usual_room: &'static str,
    /// Where the volume comes from (a public French movers' table).
    pub source: &'static str,
}

impl CatalogueItem {
    /// The label for a BCP 47 locale: English for `en*`, French otherwise (the product's default).
    pub fn label(&self, locale: &str) -> &'static str {
        if is_english(locale) {
            self.label_en
        } else {
            self.label_fr
        }
    }
}

/// The key the vision and directive schemas use for anything the catalogue lacks.
pub const OTHER_KEY: &str = "other";

/// Every item, in a stable order.
pub fn items() -> &'static [CatalogueItem] {
    ITEMS
}

/// Every key, plus `other`, for the vision schema's enum.
pub fn schema_keys() -> Vec<&'static str> {
    ITEMS
        .iter()
        .map(|item| item.key)
        .chain([OTHER_KEY])
        .collect()
}

/// By key or alias (French or English), ignoring case, accents and surrounding spaces.
pub fn lookup(name: &str) -> Option<&'static CatalogueItem> {
    if let Some(item) = ITEMS.iter().find(|item| item.key == name) {
        return Some(item);
    }
    let wanted = normalise(name);
    if wanted.is_empty() {
        return None;
    }
    ITEMS
        .iter()
        .find(|item| names(item).any(|candidate| normalise(candidate) == wanted))
}

/// Position of an item in [`items`]; fusion orders lines by it so an inventory reads like the
/// table (living room furniture first, boxes and garden last).
pub(crate) fn position(item: &CatalogueItem) -> usize {
    ITEMS
        .iter()
        .position(|candidate| candidate.key == item.key)
        .unwrap_or(usize::MAX)
}

pub(crate) fn is_english(locale: &str) -> bool {
    locale
        .trim()
        .get(..2)
        .is_some_and(|lang| lang.eq_ignore_ascii_case("en"))
}

fn names(item: &CatalogueItem) -> impl Iterator<Item = &'static str> {
    [item.key, item.label_fr, item.label_en]
        .into_iter()
        .chain(item.aliases.iter().copied())
}

/// The comparison form of a name: lowercase, accents folded, punctuation (`_`, `-`, `'`) as
/// spaces, leading articles dropped, each word singular. Also used by fusion to match rooms.
pub(crate) fn normalise(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match fold_accent(c) {
            Some(plain) => folded.push_str(plain),
            None if c.is_alphanumeric() => folded.push(c),
            None => folded.push(' '),
        }
    }
    let mut words: Vec<&str> = folded.split_whitespace().collect();
    while words.len() > 1 && ARTICLES.contains(&words[0]) {
        words.remove(0);
    }
    let mut out = String::with_capacity(folded.len());
    for word in words {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(singular(word));
    }
    out
}

const ARTICLES: &[&str] = &[
    "le", "la", "les", "l", "un", "une", "des", "du", "mon", "ma", "mes", "the", "a", "an", "my",
    "some",
];

/// Drops a plural `s` (cartons, chairs), `es` after `x` (boxes) or `x` after a vowel pair
/// (tableaux, bureaux). Both sides
/// of a comparison go through it, so words whose singular ends in `s` (tapis, matelas) still match.
fn singular(word: &str) -> &str {
    if word.chars().count() <= 3 {
        return word;
    }
    let suffix = if word.ends_with("xes") {
        2
    } else if word.ends_with('s') || word.ends_with("aux") || word.ends_with("eux") {
        1
    } else {
        0
    };
    &word[..word.len() - suffix]
}

fn fold_accent(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => "a",
        'ç' => "c",
        'è' | 'é' | 'ê' | 'ë' => "e",
        'ì' | 'í' | 'î' | 'ï' => "i",
        'ñ' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' => "o",
        'ù' | 'ú' | 'û' | 'ü' => "u",
        'ý' | 'ÿ' => "y",
        'œ' => "oe",
        'æ' => "ae",
        'ß' => "ss",
        _ => return None,
    })
}

/// Values quoted by the public French movers' guides the brief cites (canapé 3 places 2 m³…).
const TABLES: &str = "barème volumes déménageurs FR (moyenne de tables publiques)";
/// Items those guides list less consistently: the common value, from usual dimensions rounded up
/// the way movers do (they quote the space an item takes in the truck, not its exact cube).
const USUAL: &str =
    "barème volumes déménageurs FR (valeur usuelle, dimensions courantes arrondies au-dessus)";
const BOX_STANDARD: &str = "tables déménageurs FR : carton standard 55×35×30 cm ≈ 0,06 m³";
const BOX_BOOKS: &str = "tables déménageurs FR : carton livres 35×27×30 cm ≈ 0,03 m³";
const BOX_DIMENSIONS: &str = "tables déménageurs FR : dimensions usuelles du carton, arrondies";

#[allow(clippy::too_many_arguments)]
const fn item(
    key: &'static str,
    label_fr: &'static str,
    label_en: &'static str,
    aliases: &'static [&'static str],
    volume_m3: f64,
    category: Category,
    usual_room: &'static str,
    source: &'static str,
) -> CatalogueItem {
    CatalogueItem {
        key,
        label_fr,
        label_en,
        aliases,
        volume_m3,
        category,
        usual_room,
        source,
    }
}

use Category::{Appliance, Decor, Electronics, Furniture, Other, Outdoor};

#[rustfmt::skip]
static ITEMS: &[CatalogueItem] = &[
    // Salon
    item("sofa_2_seats", "Canapé 2 places", "2-seat sofa",
        &["canapé deux places", "petit canapé", "loveseat", "two-seater sofa", "2 seater sofa", "settee"],
        1.5, Furniture, "salon", TABLES),
    item("sofa_3_seats", "Canapé 3 places", "3-seat sofa",
        &["canapé trois places", "canapé", "sofa", "couch", "three-seater sofa", "3 seater sofa"],
        2.0, Furniture, "salon", TABLES),
    item("corner_sofa", "Canapé d'angle", "Corner sofa",
        &["canapé en angle", "sectional sofa", "sectional", "l-shaped sofa"],
        3.0, Furniture, "salon", USUAL),
    item("sofa_bed", "Canapé convertible", "Sofa bed",
        &["convertible", "clic-clac", "bz", "canapé-lit"],
        2.0, Furniture, "salon", USUAL),
    item("armchair", "Fauteuil", "Armchair",
        &["fauteuil club", "bergère", "easy chair"],
        0.8, Furniture, "salon", TABLES),
    item("pouf", "Pouf", "Footstool",
        &["repose-pieds", "ottoman", "pouffe"],
        0.2, Furniture, "salon", USUAL),
    item("coffee_table", "Table basse", "Coffee table",
        &["table de salon", "cocktail table"],
        0.4, Furniture, "salon", TABLES),
    item("tv_stand", "Meuble TV", "TV stand",
        &["meuble télé", "meuble télévision", "tv unit", "tv cabinet", "media console"],
        1.0, Furniture, "salon", TABLES),
    item("television", "Téléviseur", "Television",
        &["télévision", "télé", "tv", "écran plat", "flat screen tv", "tv set"],
        0.3, Electronics, "salon", USUAL),
    item("hifi_system", "Chaîne hi-fi", "Hi-fi system",
        &["chaîne stéréo", "enceinte", "stereo", "speaker", "sound system"],
        0.2, Electronics, "salon", USUAL),
    item("bookcase", "Bibliothèque", "Bookcase",
        &["bibliothèque haute", "grande étagère", "bookshelf", "bookshelves"],
        1.5, Furniture, "salon", USUAL),
    item("shelf_unit", "Étagère", "Shelving unit",
        &["étagère basse", "rayonnage", "shelf", "shelves", "shelving"],
        0.5, Furniture, "salon", USUAL),
    item("sideboard", "Buffet bas", "Sideboard",
        &["buffet", "bahut", "enfilade", "credenza"],
        1.5, Furniture, "salle à manger", USUAL),
    item("display_cabinet", "Vaisselier", "Display cabinet",
        &["buffet haut", "vitrine", "china cabinet", "hutch"],
        2.0, Furniture, "salle à manger", USUAL),
    item("piano_upright", "Piano droit", "Upright piano",
        &["piano", "upright"],
        1.5, Furniture, "salon", USUAL),
    item("floor_lamp", "Lampadaire", "Floor lamp",
        &["lampe sur pied", "standard lamp"],
        0.2, Decor, "salon", USUAL),
    item("table_lamp", "Lampe", "Table lamp",
        &["lampe de chevet", "lampe de bureau", "lamp", "desk lamp", "bedside lamp"],
        0.05, Decor, "salon", USUAL),
    item("rug", "Tapis", "Rug",
        &["tapis roulé", "carpet", "area rug"],
        0.2, Decor, "salon", USUAL),
    item("mirror", "Miroir", "Mirror",
        &["glace", "psyché", "wall mirror"],
        0.1, Decor, "salon", USUAL),
    item("painting", "Tableau", "Painting",
        &["cadre", "toile", "picture", "framed picture", "artwork"],
        0.1, Decor, "salon", USUAL),
    item("plant", "Plante", "Plant",
        &["plante verte", "plante en pot", "pot de fleurs", "potted plant", "houseplant"],
        0.2, Decor, "salon", USUAL),
    item("aquarium", "Aquarium", "Aquarium",
        &["fish tank"],
        0.3, Decor, "salon", USUAL),
    // Salle à manger
    item("dining_table_4", "Table 4 personnes", "Dining table (4 seats)",
        &["table à manger 4 personnes", "table 4 places", "petite table à manger", "table for 4",
          "small dining table"],
        1.0, Furniture, "salle à manger", USUAL),
    item("dining_table_6", "Table 6 personnes", "Dining table (6 seats)",
        &["table à manger", "table de salle à manger", "table 6 places",
          "table à manger 6 personnes", "dining table", "table for 6"],
        1.5, Furniture, "salle à manger", TABLES),
    item("dining_table_8", "Table 8 personnes", "Dining table (8 seats)",
        &["grande table à manger", "table 8 places", "table à rallonges", "table for 8",
          "large dining table", "extending dining table"],
        2.0, Furniture, "salle à manger", USUAL),
    item("chair", "Chaise", "Chair",
        &["chaise de salle à manger", "dining chair"],
        0.3, Furniture, "salle à manger", TABLES),
    item("bar_stool", "Tabouret", "Stool",
        &["tabouret de bar", "bar stool"],
        0.2, Furniture, "cuisine", USUAL),
    item("high_chair", "Chaise haute", "High chair",
        &["chaise bébé", "baby high chair"],
        0.3, Furniture, "cuisine", USUAL),
    // Chambre
    item("single_bed", "Lit simple", "Single bed",
        &["lit 1 place", "lit une place", "lit 90", "twin bed"],
        1.5, Furniture, "chambre", USUAL),
    item("double_bed", "Lit double", "Double bed",
        &["lit double avec sommier", "lit 2 places", "lit deux places", "lit 140", "lit", "bed"],
        2.5, Furniture, "chambre", TABLES),
    item("king_size_bed", "Lit king size", "King-size bed",
        &["lit 160", "lit 180", "grand lit", "lit queen size", "queen bed", "king bed"],
        3.0, Furniture, "chambre", USUAL),
    item("bunk_bed", "Lits superposés", "Bunk bed",
        &["lit superposé", "lit mezzanine", "loft bed"],
        2.0, Furniture, "chambre d'enfant", USUAL),
    item("crib", "Lit bébé", "Cot",
        &["lit à barreaux", "berceau", "crib", "baby cot", "cradle"],
        0.8, Furniture, "chambre d'enfant", USUAL),
    item("mattress_single", "Matelas 1 place", "Single mattress",
        &["matelas une place", "matelas 90"],
        0.5, Furniture, "chambre", USUAL),
    item("mattress_double", "Matelas 2 places", "Double mattress",
        &["matelas", "matelas deux places", "matelas 140", "mattress"],
        0.8, Furniture, "chambre", USUAL),
    item("wardrobe_1_door", "Armoire 1 porte", "Single wardrobe",
        &["armoire une porte", "penderie", "petite armoire", "1-door wardrobe",
          "single-door wardrobe"],
        1.0, Furniture, "chambre", USUAL),
    item("wardrobe_2_doors", "Armoire 2 portes", "Wardrobe (2 doors)",
        &["armoire deux portes", "armoire", "wardrobe", "closet", "2-door wardrobe",
          "double wardrobe"],
        2.0, Furniture, "chambre", TABLES),
    item("wardrobe_3_doors", "Armoire 3 portes", "Wardrobe (3 doors)",
        &["armoire trois portes", "grande armoire", "large wardrobe", "3-door wardrobe",
          "triple wardrobe"],
        3.0, Furniture, "chambre", USUAL),
    item("chest_of_drawers", "Commode", "Chest of drawers",
        &["commode à tiroirs", "semainier", "dresser", "drawers"],
        1.0, Furniture, "chambre", TABLES),
    item("bedside_table", "Table de chevet", "Bedside table",
        &["chevet", "table de nuit", "nightstand", "night table"],
        0.2, Furniture, "chambre", TABLES),
    item("dressing_table", "Coiffeuse", "Dressing table",
        &["table de maquillage", "vanity table"],
        0.6, Furniture, "chambre", USUAL),
    item("changing_table", "Table à langer", "Changing table",
        &["commode à langer", "baby changing table"],
        0.6, Furniture, "chambre d'enfant", USUAL),
    item("toy_chest", "Coffre à jouets", "Toy chest",
        &["coffre", "malle", "toy box", "trunk"],
        0.3, Furniture, "chambre d'enfant", USUAL),
    // Bureau
    item("desk", "Bureau", "Desk",
        &["table de bureau", "bureau d'écolier", "writing desk", "computer desk"],
        1.0, Furniture, "bureau", USUAL),
    item("office_chair", "Chaise de bureau", "Office chair",
        &["fauteuil de bureau", "siège de bureau", "desk chair", "swivel chair"],
        0.4, Furniture, "bureau", USUAL),
    item("filing_cabinet", "Caisson de bureau", "Filing cabinet",
        &["caisson", "classeur", "meuble classeur", "file cabinet"],
        0.4, Furniture, "bureau", USUAL),
    item("computer", "Ordinateur", "Computer",
        &["ordinateur de bureau", "unité centrale", "écran d'ordinateur", "pc",
          "desktop computer", "monitor"],
        0.2, Electronics, "bureau", USUAL),
    item("printer", "Imprimante", "Printer",
        &["imprimante laser", "scanner"],
        0.1, Electronics, "bureau", USUAL),
    // Cuisine
    item("fridge", "Réfrigérateur", "Fridge",
        &["frigo", "réfrigérateur combiné", "frigo combiné", "réfrigérateur congélateur",
          "fridge freezer", "refrigerator"],
        1.0, Appliance, "cuisine", USUAL),
    item("fridge_small", "Réfrigérateur top", "Under-counter fridge",
        &["petit frigo", "petit réfrigérateur", "frigo top", "réfrigérateur table top",
          "mini-frigo", "mini fridge", "small fridge", "under counter fridge"],
        0.5, Appliance, "cuisine", USUAL),
    item("fridge_american", "Réfrigérateur américain", "American fridge",
        &["frigo américain", "réfrigérateur side by side", "american fridge freezer",
          "side-by-side fridge", "double door fridge"],
        2.0, Appliance, "cuisine", TABLES),
    item("freezer", "Congélateur", "Freezer",
        &["congélateur armoire", "congélateur coffre", "congélo", "chest freezer",
          "upright freezer"],
        1.0, Appliance, "cuisine", USUAL),
    item("oven", "Four", "Oven",
        &["four encastrable", "four électrique", "built-in oven", "wall oven"],
        0.5, Appliance, "cuisine", TABLES),
    item("cooker", "Cuisinière", "Cooker",
        &["gazinière", "cuisinière à gaz", "range", "stove"],
        0.7, Appliance, "cuisine", USUAL),
    item("microwave", "Micro-ondes", "Microwave",
        &["four à micro-ondes", "microwave oven"],
        0.1, Appliance, "cuisine", USUAL),
    item("dishwasher", "Lave-vaisselle", "Dishwasher",
        &["dish washer"],
        0.6, Appliance, "cuisine", USUAL),
    item("small_appliance", "Petit électroménager", "Small appliance",
        &["cafetière", "machine à café", "grille-pain", "bouilloire", "coffee machine",
          "toaster", "kettle", "food processor"],
        0.05, Appliance, "cuisine", USUAL),
    item("kitchen_table", "Table de cuisine", "Kitchen table",
        &["petite table de cuisine", "breakfast table"],
        0.8, Furniture, "cuisine", USUAL),
    item("kitchen_cabinet", "Meuble de cuisine", "Kitchen cabinet",
        &["élément de cuisine", "buffet de cuisine", "placard de cuisine", "kitchen unit",
          "kitchen cupboard"],
        0.8, Furniture, "cuisine", USUAL),
    // Buanderie, salle de bain, entrée
    item("washing_machine", "Lave-linge", "Washing machine",
        &["machine à laver", "lave-linge séchant", "laveuse", "washer", "washer dryer"],
        0.6, Appliance, "buanderie", USUAL),
    item("tumble_dryer", "Sèche-linge", "Tumble dryer",
        &["sèche-linge à condensation", "dryer", "clothes dryer"],
        0.6, Appliance, "buanderie", USUAL),
    item("drying_rack", "Étendoir à linge", "Clothes airer",
        &["séchoir à linge", "étendoir", "tancarville", "drying rack", "clothes horse"],
        0.1, Other, "buanderie", USUAL),
    item("ironing_board", "Planche à repasser", "Ironing board",
        &["table à repasser"],
        0.1, Other, "buanderie", USUAL),
    item("vacuum_cleaner", "Aspirateur", "Vacuum cleaner",
        &["aspirateur balai", "hoover", "vacuum"],
        0.1, Appliance, "buanderie", USUAL),
    item("laundry_basket", "Panier à linge", "Laundry basket",
        &["corbeille à linge", "bac à linge", "laundry hamper", "hamper"],
        0.1, Other, "salle de bain", USUAL),
    item("bathroom_cabinet", "Meuble de salle de bain", "Bathroom cabinet",
        &["meuble vasque", "armoire de toilette", "colonne de salle de bain", "vanity unit",
          "bathroom unit"],
        0.5, Furniture, "salle de bain", USUAL),
    item("console_table", "Console", "Console table",
        &["table console", "hall table"],
        0.4, Furniture, "entrée", USUAL),
    item("shoe_cabinet", "Meuble à chaussures", "Shoe cabinet",
        &["range-chaussures", "rangement à chaussures", "shoe rack", "shoe storage"],
        0.4, Furniture, "entrée", USUAL),
    item("coat_rack", "Portemanteau", "Coat stand",
        &["porte-manteau", "perroquet", "coat rack", "hat stand"],
        0.2, Furniture, "entrée", USUAL),
    item("pushchair", "Poussette", "Pushchair",
        &["landau", "stroller", "pram", "buggy"],
        0.3, Other, "entrée", USUAL),
    // Cartons et bagages
    item("box_standard", "Carton standard", "Standard box",
        &["carton", "carton de déménagement", "carton moyen", "boîte", "box", "moving box",
          "cardboard box"],
        0.06, Category::Box, "toutes pièces", BOX_STANDARD),
    item("box_books", "Carton livres", "Book box",
        &["carton de livres", "carton à livres", "petit carton", "book box", "box of books",
          "small box"],
        0.03, Category::Box, "toutes pièces", BOX_BOOKS),
    item("box_large", "Grand carton", "Large box",
        &["gros carton", "carton xl", "carton linge", "large box", "big box"],
        0.1, Category::Box, "toutes pièces", BOX_DIMENSIONS),
    item("box_wardrobe", "Carton penderie", "Wardrobe box",
        &["carton à penderie", "carton vêtements sur cintres", "wardrobe carton", "hanging box"],
        0.3, Category::Box, "chambre", BOX_DIMENSIONS),
    item("suitcase", "Valise", "Suitcase",
        &["bagage", "luggage", "trolley"],
        0.1, Category::Box, "chambre", USUAL),
    item("bag", "Sac", "Bag",
        &["sac de voyage", "sac de linge", "sac cabas", "holdall", "duffel bag", "laundry bag"],
        0.05, Category::Box, "toutes pièces", USUAL),
    // Garage, cave, jardin
    item("bicycle", "Vélo", "Bicycle",
        &["bicyclette", "vtt", "bike"],
        0.5, Outdoor, "garage", USUAL),
    item("exercise_bike", "Vélo d'appartement", "Exercise bike",
        &["vélo elliptique", "elliptique", "home trainer", "stationary bike", "cross trainer"],
        0.6, Other, "garage", USUAL),
    item("treadmill", "Tapis de course", "Treadmill",
        &["tapis roulant", "running machine"],
        1.2, Other, "garage", USUAL),
    item("workbench", "Établi", "Workbench",
        &["table d'atelier", "work bench"],
        1.0, Furniture, "garage", USUAL),
    item("metal_shelving", "Étagère métallique", "Metal shelving",
        &["rayonnage métallique", "étagère de garage", "garage shelving", "metal shelves"],
        0.8, Furniture, "garage", USUAL),
    item("tool_box", "Caisse à outils", "Toolbox",
        &["boîte à outils", "coffre à outils", "tool box", "tool chest"],
        0.1, Other, "garage", USUAL),
    item("lawn_mower", "Tondeuse", "Lawn mower",
        &["tondeuse à gazon", "mower", "lawnmower"],
        0.5, Outdoor, "garage", USUAL),
    item("garden_table", "Table de jardin", "Garden table",
        &["table d'extérieur", "table de terrasse", "patio table", "outdoor table"],
        1.0, Outdoor, "jardin", USUAL),
    item("garden_chair", "Chaise de jardin", "Garden chair",
        &["fauteuil de jardin", "chaise d'extérieur", "patio chair", "outdoor chair"],
        0.2, Outdoor, "jardin", USUAL),
    item("sun_lounger", "Bain de soleil", "Sun lounger",
        &["transat", "chaise longue", "deckchair", "deck chair", "lounger"],
        0.4, Outdoor, "jardin", USUAL),
    item("parasol", "Parasol", "Parasol",
        &["pied de parasol", "patio umbrella", "garden umbrella"],
        0.2, Outdoor, "jardin", USUAL),
    item("barbecue", "Barbecue", "Barbecue",
        &["plancha", "bbq", "grill"],
        0.5, Outdoor, "jardin", USUAL),
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn has_at_least_sixty_items() {
        assert!(items().len() >= 60, "{} items", items().len());
    }

    #[test]
    fn keys_are_unique_snake_case_and_not_other() {
        let mut seen = HashSet::new();
        for item in items() {
            assert!(seen.insert(item.key), "duplicate key {}", item.key);
            assert_ne!(item.key, OTHER_KEY);
            assert!(
                item.key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{} is not snake_case",
                item.key
            );
        }
    }

    #[test]
    fn every_name_resolves_to_its_own_item() {
        for item in items() {
            for name in names(item) {
                assert_eq!(
                    lookup(name).map(|found| found.key),
                    Some(item.key),
                    "{name:?}"
                );
            }
        }
    }

    #[test]
    fn no_two_items_share_a_normalised_name() {
        let mut owner = std::collections::HashMap::new();
        for item in items() {
            for name in names(item) {
                if let Some(other) = owner.insert(normalise(name), item.key) {
                    assert_eq!(other, item.key, "{name:?} is ambiguous");
                }
            }
        }
    }

    #[test]
    fn volumes_are_positive_and_plausible_and_sourced() {
        for item in items() {
            assert!(
                item.volume_m3 > 0.0 && item.volume_m3 <= 3.0,
                "{}",
                item.key
            );
            assert!(
                !item.source.is_empty() && !item.usual_room.is_empty(),
                "{}",
                item.key
            );
            assert!(
                !item.label_fr.is_empty() && !item.label_en.is_empty(),
                "{}",
                item.key
            );
        }
    }

    #[test]
    fn reference_volumes_from_the_brief() {
        let expected = [
            ("sofa_2_seats", 1.5),
            ("sofa_3_seats", 2.0),
            ("armchair", 0.8),
            ("coffee_table", 0.4),
            ("tv_stand", 1.0),
            ("double_bed", 2.5),
            ("wardrobe_2_doors", 2.0),
            ("chest_of_drawers", 1.0),
            ("bedside_table", 0.2),
            ("dining_table_6", 1.5),
            ("chair", 0.3),
            ("fridge_american", 2.0),
            ("oven", 0.5),
            ("box_standard", 0.06),
            ("box_books", 0.03),
        ];
        for (key, volume) in expected {
            let item = lookup(key).unwrap();
            assert_eq!(item.volume_m3, volume, "{key}");
            assert!(item.source.contains("tables"), "{key}: {}", item.source);
        }
    }

    #[test]
    fn fridges_are_told_apart() {
        assert_eq!(lookup("frigo").unwrap().key, "fridge");
        assert_eq!(lookup("réfrigérateur").unwrap().key, "fridge");
        assert_eq!(lookup("fridge").unwrap().key, "fridge");
        assert_eq!(lookup("frigo américain").unwrap().key, "fridge_american");
        assert_eq!(lookup("petit frigo").unwrap().key, "fridge_small");
        assert!(lookup("fridge_small").unwrap().volume_m3 < lookup("fridge").unwrap().volume_m3);
        assert!(lookup("fridge").unwrap().volume_m3 < lookup("fridge_american").unwrap().volume_m3);
    }

    #[test]
    fn lookup_ignores_case_accents_spaces_and_punctuation() {
        assert_eq!(lookup("  REFRIGERATEUR ").unwrap().key, "fridge");
        assert_eq!(lookup("Canape 3 places").unwrap().key, "sofa_3_seats");
        assert_eq!(lookup("lave linge").unwrap().key, "washing_machine");
        assert_eq!(lookup("Lave-Linge").unwrap().key, "washing_machine");
        assert_eq!(lookup("canapé  d’angle").unwrap().key, "corner_sofa");
        assert_eq!(lookup("Sofa_3_Seats").unwrap().key, "sofa_3_seats");
        assert_eq!(lookup("ÉTABLI").unwrap().key, "workbench");
    }

    #[test]
    fn lookup_tolerates_plurals_and_articles() {
        assert_eq!(lookup("cartons").unwrap().key, "box_standard");
        assert_eq!(lookup("cartons de livres").unwrap().key, "box_books");
        assert_eq!(lookup("les cartons de livres").unwrap().key, "box_books");
        assert_eq!(lookup("le frigo").unwrap().key, "fridge");
        assert_eq!(lookup("l'armoire").unwrap().key, "wardrobe_2_doors");
        assert_eq!(lookup("chaises").unwrap().key, "chair");
        assert_eq!(lookup("fauteuils").unwrap().key, "armchair");
        assert_eq!(lookup("tableaux").unwrap().key, "painting");
        assert_eq!(lookup("the chairs").unwrap().key, "chair");
        assert_eq!(lookup("boxes").unwrap().key, "box_standard");
        assert_eq!(lookup("tapis").unwrap().key, "rug");
        assert_eq!(lookup("lits superposés").unwrap().key, "bunk_bed");
    }

    #[test]
    fn lookup_rejects_unknown_and_empty_names() {
        assert!(lookup("").is_none());
        assert!(lookup("   ").is_none());
        assert!(lookup("other").is_none());
        assert!(lookup("piano à queue de concert").is_none());
        assert!(lookup("le").is_none());
    }

    #[test]
    fn schema_keys_are_every_key_then_other() {
        let keys = schema_keys();
        assert_eq!(keys.len(), items().len() + 1);
        assert_eq!(keys.last(), Some(&OTHER_KEY));
        for (key, item) in keys.iter().zip(items()) {
            assert_eq!(*key, item.key);
        }
    }

    #[test]
    fn labels_follow_the_locale() {
        let fridge = lookup("fridge").unwrap();
        assert_eq!(fridge.label("fr"), "Réfrigérateur");
        assert_eq!(fridge.label("fr-FR"), "Réfrigérateur");
        assert_eq!(fridge.label("en-GB"), "Fridge");
        assert_eq!(fridge.label("EN"), "Fridge");
        assert_eq!(fridge.label(""), "Réfrigérateur");
        assert_eq!(fridge.label("de"), "Réfrigérateur");
    }

    #[test]
    fn serialises_with_snake_case_category() {
        let value = serde_json::to_value(lookup("box_books").unwrap()).unwrap();
        assert_eq!(value["category"], "box");
        assert_eq!(value["volume_m3"], 0.03);
    }

    proptest! {
        #[test]
        fn every_alias_resolves_in_any_case(index in 0..ITEMS.len(), upper in any::<bool>()) {
            let item = &ITEMS[index];
            for name in names(item) {
                let spoken = if upper { name.to_uppercase() } else { format!("  {name} ") };
                prop_assert_eq!(lookup(&spoken).map(|found| found.key), Some(item.key));
            }
        }

        #[test]
        fn lookup_never_panics(name in "\\PC{0,40}") {
            let _ = lookup(&name);
        }
    }
}
