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

use crate::protocol::ItemFlag;
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
    /// Typical weight of one, in kg (a mover plans the crew and the truck's payload with it).
    pub weight_kg: f64,
    /// Where the weight comes from.
    pub weight_source: &'static str,
    /// What the mover must plan for: fragile, to take apart, heavy (two movers or equipment).
    pub flags: &'static [ItemFlag],
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

/// Items whose name matches what a customer types in the review's search box, best first, at
/// most `limit`. Same forgiveness as [`lookup`] (case, accents, articles, plurals); a name
/// matches when it is the query, starts with it, or every word of the query starts a word of the
/// name ("arm 2" finds "Armoire 2 portes"). Labels rank before aliases, the locale's label first.
pub fn search(query: &str, locale: &str, limit: usize) -> Vec<&'static CatalogueItem> {
    let wanted = normalise(query);
    if wanted.is_empty() {
        return Vec::new();
    }
    let words: Vec<&str> = wanted.split(' ').collect();
    let mut found: Vec<(u8, usize, &'static CatalogueItem)> = ITEMS
        .iter()
        .enumerate()
        .filter_map(|(position, item)| {
            let (own, other) = if is_english(locale) {
                (item.label_en, item.label_fr)
            } else {
                (item.label_fr, item.label_en)
            };
            let ranked = [(own, 0u8), (other, 1)]
                .into_iter()
                .chain(item.aliases.iter().map(|alias| (*alias, 2)))
                .chain([(item.key, 3)]);
            ranked
                .filter_map(|(name, kind)| {
                    match_rank(&normalise(name), &wanted, &words).map(|rank| rank * 4 + kind)
                })
                .min()
                .map(|rank| (rank, position, item))
        })
        .collect();
    found.sort_by_key(|&(rank, position, _)| (rank, position));
    found
        .into_iter()
        .take(limit)
        .map(|(_, _, item)| item)
        .collect()
}

/// 0 exact, 1 prefix, 2 every query word starts a word of the name; `None` otherwise.
fn match_rank(name: &str, wanted: &str, words: &[&str]) -> Option<u8> {
    if name == wanted {
        Some(0)
    } else if name.starts_with(wanted) {
        Some(1)
    } else if words
        .iter()
        .all(|word| name.split(' ').any(|part| part.starts_with(word)))
    {
        Some(2)
    } else {
        None
    }
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
    let folded = fold(text);
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

/// Lowercase, accents folded, anything not alphanumeric as a space; words keep their form.
/// The rule-based narration parser matches its phrases on this.
pub(crate) fn fold(text: &str) -> String {
    let mut folded = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match fold_accent(c) {
            Some(plain) => folded.push_str(plain),
            None if c.is_alphanumeric() => folded.push(c),
            None => folded.push(' '),
        }
    }
    folded
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

/// Weights of furniture and appliances: the net weight French retailers publish on their product
/// sheets for the common model of each item, rounded to 5 kg (10 kg above 100 kg).
const KG_MAKERS: &str =
    "fiches produit fabricants et distributeurs FR (IKEA, Conforama, Darty, Boulanger) : poids net usuel, arrondi";
const KG_PIANO: &str =
    "transporteurs de pianos FR : piano droit 200 à 300 kg, piano à queue 300 à 500 kg (valeur basse)";
const KG_BOXES: &str =
    "tables déménageurs FR : charge usuelle d'un carton plein (15 kg recommandés, 20 kg au plus)";
/// Items at or above this weight are flagged [`ItemFlag::Heavy`] unless they come apart into
/// lighter pieces: one mover carries up to about 50 kg down stairs.
pub const HEAVY_KG: f64 = 60.0;
/// Density used to estimate the weight of an item the catalogue lacks from its volume: movers'
/// rule of thumb for furnished homes (150 kg per m³ loaded).
pub const KG_PER_M3: f64 = 150.0;

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
    weight_kg: f64,
    weight_source: &'static str,
    flags: &'static [ItemFlag],
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
        weight_kg,
        weight_source,
        flags,
    }
}

use Category::{Appliance, Decor, Electronics, Furniture, Other, Outdoor};
use ItemFlag::{Disassembly, Fragile, Heavy};

#[rustfmt::skip]
static ITEMS: &[CatalogueItem] = &[
    // Salon
    item("sofa_2_seats", "Canapé 2 places", "2-seat sofa",
        &["canapé deux places", "petit canapé", "loveseat", "two-seater sofa", "2 seater sofa", "settee"],
        1.5, Furniture, "salon", TABLES,
        40.0, KG_MAKERS, &[]),
    item("sofa_3_seats", "Canapé 3 places", "3-seat sofa",
        &["canapé trois places", "canapé", "sofa", "couch", "three-seater sofa", "3 seater sofa"],
        2.0, Furniture, "salon", TABLES,
        55.0, KG_MAKERS, &[]),
    item("corner_sofa", "Canapé d'angle", "Corner sofa",
        &["canapé en angle", "sectional sofa", "sectional", "l-shaped sofa"],
        3.0, Furniture, "salon", USUAL,
        90.0, KG_MAKERS, &[Disassembly]),
    item("sofa_bed", "Canapé convertible", "Sofa bed",
        &["convertible", "clic-clac", "bz", "canapé-lit"],
        2.0, Furniture, "salon", USUAL,
        70.0, KG_MAKERS, &[Heavy]),
    item("armchair", "Fauteuil", "Armchair",
        &["fauteuil club", "bergère", "easy chair"],
        0.8, Furniture, "salon", TABLES,
        20.0, KG_MAKERS, &[]),
    item("pouf", "Pouf", "Footstool",
        &["repose-pieds", "ottoman", "pouffe"],
        0.2, Furniture, "salon", USUAL,
        5.0, KG_MAKERS, &[]),
    item("glass_table", "Table en verre", "Glass table",
        &["table vitrée", "plateau en verre", "table basse en verre", "glass dining table",
          "glass coffee table"],
        1.0, Furniture, "salle à manger", USUAL,
        40.0, KG_MAKERS, &[Fragile, Disassembly]),
    item("coffee_table", "Table basse", "Coffee table",
        &["table de salon", "cocktail table"],
        0.4, Furniture, "salon", TABLES,
        20.0, KG_MAKERS, &[]),
    item("tv_stand", "Meuble TV", "TV stand",
        &["meuble télé", "meuble télévision", "tv unit", "tv cabinet", "media console"],
        1.0, Furniture, "salon", TABLES,
        30.0, KG_MAKERS, &[]),
    item("television", "Téléviseur", "Television",
        &["télévision", "télé", "tv", "écran plat", "flat screen tv", "tv set"],
        0.3, Electronics, "salon", USUAL,
        15.0, KG_MAKERS, &[Fragile]),
    item("hifi_system", "Chaîne hi-fi", "Hi-fi system",
        &["chaîne stéréo", "enceinte", "stereo", "speaker", "sound system"],
        0.2, Electronics, "salon", USUAL,
        10.0, KG_MAKERS, &[Fragile]),
    item("bookcase", "Bibliothèque", "Bookcase",
        &["bibliothèque haute", "grande étagère", "bookshelf", "bookshelves"],
        1.5, Furniture, "salon", USUAL,
        40.0, KG_MAKERS, &[Disassembly]),
    item("shelf_unit", "Étagère", "Shelving unit",
        &["étagère basse", "rayonnage", "shelf", "shelves", "shelving"],
        0.5, Furniture, "salon", USUAL,
        15.0, KG_MAKERS, &[]),
    item("sideboard", "Buffet bas", "Sideboard",
        &["buffet", "bahut", "enfilade", "credenza"],
        1.5, Furniture, "salle à manger", USUAL,
        50.0, KG_MAKERS, &[]),
    item("display_cabinet", "Vaisselier", "Display cabinet",
        &["buffet haut", "vitrine", "china cabinet", "hutch"],
        2.0, Furniture, "salle à manger", USUAL,
        70.0, KG_MAKERS, &[Fragile, Disassembly]),
    item("piano_upright", "Piano droit", "Upright piano",
        &["piano", "upright"],
        1.5, Furniture, "salon", USUAL,
        250.0, KG_PIANO, &[Fragile, Heavy]),
    item("piano_grand", "Piano à queue", "Grand piano",
        &["piano demi-queue", "piano crapaud", "baby grand", "baby grand piano"],
        3.0, Furniture, "salon", USUAL,
        350.0, KG_PIANO, &[Fragile, Disassembly, Heavy]),
    item("pool_table", "Billard", "Pool table",
        &["table de billard", "billiard table", "snooker table"],
        3.0, Furniture, "salon", USUAL,
        300.0, KG_MAKERS, &[Disassembly, Heavy]),
    item("safe", "Coffre-fort", "Safe",
        &["coffre fort", "armoire forte", "strongbox"],
        0.3, Furniture, "bureau", USUAL,
        150.0, KG_MAKERS, &[Heavy]),
    item("wine_cabinet", "Cave à vin", "Wine fridge",
        &["cave à vin électrique", "armoire à vin", "wine cooler", "wine cabinet"],
        0.6, Appliance, "cuisine", USUAL,
        50.0, KG_MAKERS, &[Fragile]),
    item("sewing_machine", "Machine à coudre", "Sewing machine",
        &["surjeteuse"],
        0.1, Appliance, "bureau", USUAL,
        10.0, KG_MAKERS, &[Fragile]),
    item("floor_lamp", "Lampadaire", "Floor lamp",
        &["lampe sur pied", "standard lamp"],
        0.2, Decor, "salon", USUAL,
        5.0, KG_MAKERS, &[Fragile]),
    item("table_lamp", "Lampe", "Table lamp",
        &["lampe de chevet", "lampe de bureau", "lamp", "desk lamp", "bedside lamp"],
        0.05, Decor, "salon", USUAL,
        2.0, KG_MAKERS, &[Fragile]),
    item("rug", "Tapis", "Rug",
        &["tapis roulé", "carpet", "area rug"],
        0.2, Decor, "salon", USUAL,
        10.0, KG_MAKERS, &[]),
    item("mirror", "Miroir", "Mirror",
        &["glace", "psyché", "wall mirror"],
        0.1, Decor, "salon", USUAL,
        10.0, KG_MAKERS, &[Fragile]),
    item("painting", "Tableau", "Painting",
        &["cadre", "toile", "picture", "framed picture", "artwork"],
        0.1, Decor, "salon", USUAL,
        5.0, KG_MAKERS, &[Fragile]),
    item("plant", "Plante", "Plant",
        &["plante verte", "plante en pot", "pot de fleurs", "potted plant", "houseplant"],
        0.2, Decor, "salon", USUAL,
        10.0, KG_MAKERS, &[]),
    item("aquarium", "Aquarium", "Aquarium",
        &["fish tank"],
        0.3, Decor, "salon", USUAL,
        25.0, KG_MAKERS, &[Fragile]),
    // Salle à manger
    item("dining_table_4", "Table 4 personnes", "Dining table (4 seats)",
        &["table à manger 4 personnes", "table 4 places", "petite table à manger", "table for 4",
          "small dining table"],
        1.0, Furniture, "salle à manger", USUAL,
        25.0, KG_MAKERS, &[Disassembly]),
    item("dining_table_6", "Table 6 personnes", "Dining table (6 seats)",
        &["table à manger", "table de salle à manger", "table 6 places",
          "table à manger 6 personnes", "dining table", "table for 6"],
        1.5, Furniture, "salle à manger", TABLES,
        40.0, KG_MAKERS, &[Disassembly]),
    item("dining_table_8", "Table 8 personnes", "Dining table (8 seats)",
        &["grande table à manger", "table 8 places", "table à rallonges", "table for 8",
          "large dining table", "extending dining table"],
        2.0, Furniture, "salle à manger", USUAL,
        60.0, KG_MAKERS, &[Disassembly]),
    item("bench", "Banc", "Bench",
        &["banquette", "banc d'entrée", "hall bench"],
        0.4, Furniture, "entrée", USUAL,
        15.0, KG_MAKERS, &[]),
    item("chair", "Chaise", "Chair",
        &["chaise de salle à manger", "dining chair"],
        0.3, Furniture, "salle à manger", TABLES,
        5.0, KG_MAKERS, &[]),
    item("bar_stool", "Tabouret", "Stool",
        &["tabouret de bar", "bar stool"],
        0.2, Furniture, "cuisine", USUAL,
        5.0, KG_MAKERS, &[]),
    item("high_chair", "Chaise haute", "High chair",
        &["chaise bébé", "baby high chair"],
        0.3, Furniture, "cuisine", USUAL,
        6.0, KG_MAKERS, &[]),
    // Chambre
    item("single_bed", "Lit simple", "Single bed",
        &["lit 1 place", "lit une place", "lit 90", "twin bed"],
        1.5, Furniture, "chambre", USUAL,
        35.0, KG_MAKERS, &[Disassembly]),
    item("double_bed", "Lit double", "Double bed",
        &["lit double avec sommier", "lit 2 places", "lit deux places", "lit 140", "lit", "bed"],
        2.5, Furniture, "chambre", TABLES,
        60.0, KG_MAKERS, &[Disassembly]),
    item("king_size_bed", "Lit king size", "King-size bed",
        &["lit 160", "lit 180", "grand lit", "lit queen size", "queen bed", "king bed"],
        3.0, Furniture, "chambre", USUAL,
        80.0, KG_MAKERS, &[Disassembly]),
    item("bunk_bed", "Lits superposés", "Bunk bed",
        &["lit superposé", "lit mezzanine", "loft bed"],
        2.0, Furniture, "chambre d'enfant", USUAL,
        70.0, KG_MAKERS, &[Disassembly]),
    item("crib", "Lit bébé", "Cot",
        &["lit à barreaux", "berceau", "crib", "baby cot", "cradle"],
        0.8, Furniture, "chambre d'enfant", USUAL,
        20.0, KG_MAKERS, &[Disassembly]),
    item("mattress_single", "Matelas 1 place", "Single mattress",
        &["matelas une place", "matelas 90"],
        0.5, Furniture, "chambre", USUAL,
        15.0, KG_MAKERS, &[]),
    item("mattress_double", "Matelas 2 places", "Double mattress",
        &["matelas", "matelas deux places", "matelas 140", "mattress"],
        0.8, Furniture, "chambre", USUAL,
        25.0, KG_MAKERS, &[]),
    item("wardrobe_1_door", "Armoire 1 porte", "Single wardrobe",
        &["armoire une porte", "penderie", "petite armoire", "1-door wardrobe",
          "single-door wardrobe"],
        1.0, Furniture, "chambre", USUAL,
        50.0, KG_MAKERS, &[Disassembly]),
    item("wardrobe_2_doors", "Armoire 2 portes", "Wardrobe (2 doors)",
        &["armoire deux portes", "armoire", "wardrobe", "closet", "2-door wardrobe",
          "double wardrobe"],
        2.0, Furniture, "chambre", TABLES,
        90.0, KG_MAKERS, &[Disassembly]),
    item("wardrobe_3_doors", "Armoire 3 portes", "Wardrobe (3 doors)",
        &["armoire trois portes", "grande armoire", "large wardrobe", "3-door wardrobe",
          "triple wardrobe"],
        3.0, Furniture, "chambre", USUAL,
        130.0, KG_MAKERS, &[Disassembly, Heavy]),
    item("chest_of_drawers", "Commode", "Chest of drawers",
        &["commode à tiroirs", "semainier", "dresser", "drawers"],
        1.0, Furniture, "chambre", TABLES,
        40.0, KG_MAKERS, &[]),
    item("bedside_table", "Table de chevet", "Bedside table",
        &["chevet", "table de nuit", "nightstand", "night table"],
        0.2, Furniture, "chambre", TABLES,
        10.0, KG_MAKERS, &[]),
    item("dressing_table", "Coiffeuse", "Dressing table",
        &["table de maquillage", "vanity table"],
        0.6, Furniture, "chambre", USUAL,
        25.0, KG_MAKERS, &[Fragile]),
    item("changing_table", "Table à langer", "Changing table",
        &["commode à langer", "baby changing table"],
        0.6, Furniture, "chambre d'enfant", USUAL,
        20.0, KG_MAKERS, &[]),
    item("toy_chest", "Coffre à jouets", "Toy chest",
        &["coffre", "malle", "toy box", "trunk"],
        0.3, Furniture, "chambre d'enfant", USUAL,
        10.0, KG_MAKERS, &[]),
    // Bureau
    item("desk", "Bureau", "Desk",
        &["table de bureau", "bureau d'écolier", "writing desk", "computer desk"],
        1.0, Furniture, "bureau", USUAL,
        30.0, KG_MAKERS, &[Disassembly]),
    item("office_chair", "Chaise de bureau", "Office chair",
        &["fauteuil de bureau", "siège de bureau", "desk chair", "swivel chair"],
        0.4, Furniture, "bureau", USUAL,
        12.0, KG_MAKERS, &[]),
    item("filing_cabinet", "Caisson de bureau", "Filing cabinet",
        &["caisson", "classeur", "meuble classeur", "file cabinet"],
        0.4, Furniture, "bureau", USUAL,
        15.0, KG_MAKERS, &[]),
    item("computer", "Ordinateur", "Computer",
        &["ordinateur de bureau", "unité centrale", "écran d'ordinateur", "pc",
          "desktop computer", "monitor"],
        0.2, Electronics, "bureau", USUAL,
        10.0, KG_MAKERS, &[Fragile]),
    item("printer", "Imprimante", "Printer",
        &["imprimante laser", "scanner"],
        0.1, Electronics, "bureau", USUAL,
        8.0, KG_MAKERS, &[Fragile]),
    // Cuisine
    item("fridge", "Réfrigérateur", "Fridge",
        &["frigo", "réfrigérateur combiné", "frigo combiné", "réfrigérateur congélateur",
          "fridge freezer", "refrigerator"],
        1.0, Appliance, "cuisine", USUAL,
        70.0, KG_MAKERS, &[Heavy]),
    item("fridge_small", "Réfrigérateur top", "Under-counter fridge",
        &["petit frigo", "petit réfrigérateur", "frigo top", "réfrigérateur table top",
          "mini-frigo", "mini fridge", "small fridge", "under counter fridge"],
        0.5, Appliance, "cuisine", USUAL,
        30.0, KG_MAKERS, &[]),
    item("fridge_american", "Réfrigérateur américain", "American fridge",
        &["frigo américain", "réfrigérateur side by side", "american fridge freezer",
          "side-by-side fridge", "double door fridge"],
        2.0, Appliance, "cuisine", TABLES,
        120.0, KG_MAKERS, &[Heavy]),
    item("freezer", "Congélateur", "Freezer",
        &["congélateur armoire", "congélateur coffre", "congélo", "chest freezer",
          "upright freezer"],
        1.0, Appliance, "cuisine", USUAL,
        60.0, KG_MAKERS, &[Heavy]),
    item("oven", "Four", "Oven",
        &["four encastrable", "four électrique", "built-in oven", "wall oven"],
        0.5, Appliance, "cuisine", TABLES,
        35.0, KG_MAKERS, &[]),
    item("cooker", "Cuisinière", "Cooker",
        &["gazinière", "cuisinière à gaz", "range", "stove"],
        0.7, Appliance, "cuisine", USUAL,
        50.0, KG_MAKERS, &[]),
    item("microwave", "Micro-ondes", "Microwave",
        &["four à micro-ondes", "microwave oven"],
        0.1, Appliance, "cuisine", USUAL,
        12.0, KG_MAKERS, &[Fragile]),
    item("dishwasher", "Lave-vaisselle", "Dishwasher",
        &["dish washer"],
        0.6, Appliance, "cuisine", USUAL,
        45.0, KG_MAKERS, &[]),
    item("small_appliance", "Petit électroménager", "Small appliance",
        &["cafetière", "machine à café", "grille-pain", "bouilloire", "coffee machine",
          "toaster", "kettle", "food processor"],
        0.05, Appliance, "cuisine", USUAL,
        3.0, KG_MAKERS, &[Fragile]),
    item("kitchen_table", "Table de cuisine", "Kitchen table",
        &["petite table de cuisine", "breakfast table"],
        0.8, Furniture, "cuisine", USUAL,
        25.0, KG_MAKERS, &[]),
    item("kitchen_cabinet", "Meuble de cuisine", "Kitchen cabinet",
        &["élément de cuisine", "buffet de cuisine", "placard de cuisine", "kitchen unit",
          "kitchen cupboard"],
        0.8, Furniture, "cuisine", USUAL,
        30.0, KG_MAKERS, &[]),
    // Buanderie, salle de bain, entrée
    item("washing_machine", "Lave-linge", "Washing machine",
        &["machine à laver", "lave-linge séchant", "laveuse", "washer", "washer dryer"],
        0.6, Appliance, "buanderie", USUAL,
        70.0, KG_MAKERS, &[Heavy]),
    item("tumble_dryer", "Sèche-linge", "Tumble dryer",
        &["sèche-linge à condensation", "dryer", "clothes dryer"],
        0.6, Appliance, "buanderie", USUAL,
        40.0, KG_MAKERS, &[]),
    item("drying_rack", "Étendoir à linge", "Clothes airer",
        &["séchoir à linge", "étendoir", "tancarville", "drying rack", "clothes horse"],
        0.1, Other, "buanderie", USUAL,
        4.0, KG_MAKERS, &[]),
    item("ironing_board", "Planche à repasser", "Ironing board",
        &["table à repasser"],
        0.1, Other, "buanderie", USUAL,
        5.0, KG_MAKERS, &[]),
    item("vacuum_cleaner", "Aspirateur", "Vacuum cleaner",
        &["aspirateur balai", "hoover", "vacuum"],
        0.1, Appliance, "buanderie", USUAL,
        6.0, KG_MAKERS, &[]),
    item("laundry_basket", "Panier à linge", "Laundry basket",
        &["corbeille à linge", "bac à linge", "laundry hamper", "hamper"],
        0.1, Other, "salle de bain", USUAL,
        2.0, KG_MAKERS, &[]),
    item("bathroom_cabinet", "Meuble de salle de bain", "Bathroom cabinet",
        &["meuble vasque", "armoire de toilette", "colonne de salle de bain", "vanity unit",
          "bathroom unit"],
        0.5, Furniture, "salle de bain", USUAL,
        25.0, KG_MAKERS, &[Fragile]),
    item("console_table", "Console", "Console table",
        &["table console", "hall table"],
        0.4, Furniture, "entrée", USUAL,
        15.0, KG_MAKERS, &[]),
    item("shoe_cabinet", "Meuble à chaussures", "Shoe cabinet",
        &["range-chaussures", "rangement à chaussures", "shoe rack", "shoe storage"],
        0.4, Furniture, "entrée", USUAL,
        20.0, KG_MAKERS, &[]),
    item("coat_rack", "Portemanteau", "Coat stand",
        &["porte-manteau", "perroquet", "coat rack", "hat stand"],
        0.2, Furniture, "entrée", USUAL,
        5.0, KG_MAKERS, &[]),
    item("pushchair", "Poussette", "Pushchair",
        &["landau", "stroller", "pram", "buggy"],
        0.3, Other, "entrée", USUAL,
        10.0, KG_MAKERS, &[]),
    // Cartons et bagages
    item("box_standard", "Carton standard", "Standard box",
        &["carton", "carton de déménagement", "carton moyen", "boîte", "box", "moving box",
          "cardboard box"],
        0.06, Category::Box, "toutes pièces", BOX_STANDARD,
        15.0, KG_BOXES, &[]),
    item("box_books", "Carton livres", "Book box",
        &["carton de livres", "carton à livres", "petit carton", "book box", "box of books",
          "small box"],
        0.03, Category::Box, "toutes pièces", BOX_BOOKS,
        15.0, KG_BOXES, &[]),
    item("box_large", "Grand carton", "Large box",
        &["gros carton", "carton xl", "carton linge", "large box", "big box"],
        0.1, Category::Box, "toutes pièces", BOX_DIMENSIONS,
        20.0, KG_BOXES, &[]),
    item("box_wardrobe", "Carton penderie", "Wardrobe box",
        &["carton à penderie", "carton vêtements sur cintres", "wardrobe carton", "hanging box"],
        0.3, Category::Box, "chambre", BOX_DIMENSIONS,
        15.0, KG_BOXES, &[]),
    item("suitcase", "Valise", "Suitcase",
        &["bagage", "luggage", "trolley"],
        0.1, Category::Box, "chambre", USUAL,
        15.0, KG_BOXES, &[]),
    item("bag", "Sac", "Bag",
        &["sac de voyage", "sac de linge", "sac cabas", "holdall", "duffel bag", "laundry bag"],
        0.05, Category::Box, "toutes pièces", USUAL,
        8.0, KG_BOXES, &[]),
    // Garage, cave, jardin
    item("bicycle", "Vélo", "Bicycle",
        &["bicyclette", "vtt", "bike"],
        0.5, Outdoor, "garage", USUAL,
        15.0, KG_MAKERS, &[]),
    item("exercise_bike", "Vélo d'appartement", "Exercise bike",
        &["vélo elliptique", "elliptique", "home trainer", "stationary bike", "cross trainer"],
        0.6, Other, "garage", USUAL,
        40.0, KG_MAKERS, &[]),
    item("treadmill", "Tapis de course", "Treadmill",
        &["tapis roulant", "running machine"],
        1.2, Other, "garage", USUAL,
        90.0, KG_MAKERS, &[Disassembly, Heavy]),
    item("workbench", "Établi", "Workbench",
        &["table d'atelier", "work bench"],
        1.0, Furniture, "garage", USUAL,
        50.0, KG_MAKERS, &[Disassembly]),
    item("metal_shelving", "Étagère métallique", "Metal shelving",
        &["rayonnage métallique", "étagère de garage", "garage shelving", "metal shelves"],
        0.8, Furniture, "garage", USUAL,
        25.0, KG_MAKERS, &[Disassembly]),
    item("tool_box", "Caisse à outils", "Toolbox",
        &["boîte à outils", "coffre à outils", "tool box", "tool chest"],
        0.1, Other, "garage", USUAL,
        15.0, KG_MAKERS, &[]),
    item("lawn_mower", "Tondeuse", "Lawn mower",
        &["tondeuse à gazon", "mower", "lawnmower"],
        0.5, Outdoor, "garage", USUAL,
        30.0, KG_MAKERS, &[]),
    item("garden_table", "Table de jardin", "Garden table",
        &["table d'extérieur", "table de terrasse", "patio table", "outdoor table"],
        1.0, Outdoor, "jardin", USUAL,
        25.0, KG_MAKERS, &[]),
    item("garden_chair", "Chaise de jardin", "Garden chair",
        &["fauteuil de jardin", "chaise d'extérieur", "patio chair", "outdoor chair"],
        0.2, Outdoor, "jardin", USUAL,
        4.0, KG_MAKERS, &[]),
    item("sun_lounger", "Bain de soleil", "Sun lounger",
        &["transat", "chaise longue", "deckchair", "deck chair", "lounger"],
        0.4, Outdoor, "jardin", USUAL,
        8.0, KG_MAKERS, &[]),
    item("parasol", "Parasol", "Parasol",
        &["pied de parasol", "patio umbrella", "garden umbrella"],
        0.2, Outdoor, "jardin", USUAL,
        10.0, KG_MAKERS, &[]),
    item("barbecue", "Barbecue", "Barbecue",
        &["plancha", "bbq", "grill"],
        0.5, Outdoor, "jardin", USUAL,
        20.0, KG_MAKERS, &[]),
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

    #[test]
    fn every_item_has_a_sourced_plausible_weight() {
        for item in items() {
            assert!(
                item.weight_kg > 0.0 && item.weight_kg <= 400.0,
                "{}: {} kg",
                item.key,
                item.weight_kg
            );
            assert!(item.weight_source.contains("FR"), "{}", item.key);
            let mut flags = item.flags.to_vec();
            flags.sort();
            flags.dedup();
            assert_eq!(flags.len(), item.flags.len(), "{} repeats a flag", item.key);
        }
    }

    #[test]
    fn a_heavy_piece_is_flagged_heavy_unless_it_comes_apart() {
        for item in items() {
            let heavy = item.flags.contains(&ItemFlag::Heavy);
            let apart = item.flags.contains(&ItemFlag::Disassembly);
            if item.weight_kg >= HEAVY_KG && !apart {
                assert!(
                    heavy,
                    "{} ({} kg) is not flagged heavy",
                    item.key, item.weight_kg
                );
            }
            if heavy {
                assert!(
                    item.weight_kg >= HEAVY_KG,
                    "{} is heavy at {} kg",
                    item.key,
                    item.weight_kg
                );
            }
        }
    }

    #[test]
    fn movers_flags_on_the_usual_suspects() {
        let flags = |key: &str| lookup(key).unwrap().flags.to_vec();
        use ItemFlag::*;
        assert_eq!(flags("piano droit"), vec![Fragile, Heavy]);
        assert_eq!(lookup("piano droit").unwrap().key, "piano_upright");
        assert!(lookup("piano droit").unwrap().weight_kg >= 200.0);
        assert_eq!(flags("piano à queue"), vec![Fragile, Disassembly, Heavy]);
        assert_eq!(flags("table en verre"), vec![Fragile, Disassembly]);
        assert!(flags("armoire").contains(&Disassembly));
        assert!(flags("frigo américain").contains(&Heavy));
        assert!(flags("réfrigérateur").contains(&Heavy));
        assert!(flags("coffre-fort").contains(&Heavy));
        assert!(flags("miroir").contains(&Fragile));
        assert!(flags("carton").is_empty());
    }

    #[test]
    fn search_finds_labels_and_aliases_in_both_languages_without_accents() {
        let keys = |query: &str, locale: &str| -> Vec<&str> {
            search(query, locale, 5)
                .iter()
                .map(|item| item.key)
                .collect()
        };
        assert_eq!(keys("piano droit", "fr")[0], "piano_upright");
        assert_eq!(keys("PIANO DR", "fr")[0], "piano_upright");
        assert_eq!(keys("upright piano", "en")[0], "piano_upright");
        assert_eq!(keys("refrigerateur amer", "fr")[0], "fridge_american");
        assert_eq!(keys("frigo", "fr")[0], "fridge");
        assert_eq!(keys("arm 3", "fr")[0], "wardrobe_3_doors");
        assert_eq!(keys("wardrobe", "en")[0], "wardrobe_2_doors");
        assert_eq!(keys("Étagère", "fr")[0], "shelf_unit");
        assert_eq!(keys("cartons de livres", "fr")[0], "box_books");
        assert!(keys("pia", "fr").contains(&"piano_grand"));
        assert!(keys("", "fr").is_empty());
        assert!(keys("  ", "fr").is_empty());
        assert!(keys("zzz", "fr").is_empty());
        assert_eq!(search("a", "fr", 3).len(), 3);
    }

    proptest! {
        #[test]
        fn search_never_panics_and_respects_the_limit(query in "\\PC{0,20}", limit in 0..10usize) {
            prop_assert!(search(&query, "fr", limit).len() <= limit);
        }

        #[test]
        fn every_label_is_found_by_its_own_search(index in 0..ITEMS.len(), english in any::<bool>()) {
            let item = &ITEMS[index];
            let (label, locale) = if english { (item.label_en, "en") } else { (item.label_fr, "fr") };
            let found = search(label, locale, ITEMS.len());
            prop_assert!(found.iter().any(|f| f.key == item.key), "{label}");
        }

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
