//! Voice directives from a transcript by rules, without a text model.
//!
//! The local backend has no language model, and "le frigo reste", "quinze cartons de livres"
//! must still change the quote. The common forms, French and English, are few enough for rules:
//!
//! * **rooms**: "voici le salon", "dans la chambre", "in the kitchen", "this is the bathroom"
//!   at the start of a clause move the narration to that room (until the next one); the same
//!   phrase later in a clause ("… dans la cave") places only that clause;
//! * **exclusions**: "X reste / restent / ne part pas / on garde X / on laisse X", "X stays /
//!   we keep X / X is not coming / leave X" exclude X (all of them, or the number said: "deux
//!   chaises restent"); "X ne reste pas" excludes nothing. A clause without its own verb takes
//!   the exclusion of its neighbour ("le frigo et le four restent", "… et le canapé aussi");
//! * **additions**: an item said with a number ("quinze cartons de livres", "12 boxes", "vingt
//!   et un cartons", "une dizaine de cartons") is added when the number is at least two, when it
//!   is a box, or when the clause says to add it ("ajoute un piano", "add a freezer"); a single
//!   piece of furniture merely named ("il y a un canapé") is what the camera sees, not an
//!   addition.
//!
//! Items are catalogue names found by [`catalogue::lookup`] (the longest phrase wins: "cartons
//! de livres" is a book box, not a box), so every directive carries a catalogue key: the parser
//! never invents an `other` item or a volume. Notes need understanding and are left to the
//! OpenAI backend.

use std::{collections::HashMap, sync::OnceLock};

use crate::{
    catalogue::{self, CatalogueItem, Category},
    protocol::{Directive, DirectiveAction, VoiceDirectives},
    rooms::Room,
};

/// Longest item name tried, in words ("réfrigérateur table top", "carton vêtements sur
/// cintres").
const MAX_NAME_WORDS: usize = 6;
/// A spoken number above this is a mis-transcription; fusion caps quantities far lower anyway.
const MAX_SPOKEN: u32 = 100_000;

/// The directives of a transcript, in the order they were said. Room names are in `locale`.
pub fn directives(transcript: &str, locale: &str) -> VoiceDirectives {
    let lang = Lang(catalogue::is_english(locale));
    let mut current: Option<Room> = None;
    let mut out = Vec::new();
    for sentence in transcript.split(['.', '!', '?', ';', '\n', '…']) {
        let mut clauses = Vec::new();
        for part in sentence.split([',', ':']) {
            let folded = catalogue::fold(part);
            let words: Vec<&str> = folded.split_whitespace().collect();
            for words in split_conjunctions(&words, lang) {
                clauses.push(Clause::read(words, lang, &mut current));
            }
        }
        for (index, clause) in clauses.iter().enumerate() {
            let neighbour_excludes = |i: Option<usize>| {
                i.and_then(|i| clauses.get(i))
                    .is_some_and(|c| c.verb == Verb::Exclude)
            };
            let inherits = clause.verb == Verb::None
                && clause.mentions.iter().all(|m| m.quantity.is_none())
                && (neighbour_excludes(index.checked_sub(1))
                    || neighbour_excludes(Some(index + 1)));
            clause.directives(inherits, locale, &mut out);
        }
    }
    VoiceDirectives { directives: out }
}

/// The transcript's language, from the job's locale: number words differ ("four" is an oven in
/// French) while verbs and room names are recognised in both.
#[derive(Clone, Copy)]
struct Lang(/** English */ bool);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Verb {
    None,
    Exclude,
    Add,
    /// "ne reste pas": explicitly not an exclusion.
    Negated,
    /// "partent avec nous": it moves, so it never inherits a neighbour's exclusion ("la chaise
    /// part, la lampe reste"); a counted mention is still an addition.
    Moves,
}

struct Mention {
    item: &'static CatalogueItem,
    quantity: Option<u32>,
}

struct Clause {
    verb: Verb,
    room: Option<Room>,
    mentions: Vec<Mention>,
}

impl Clause {
    /// Reads one clause; a room phrase at its start moves `current`.
    fn read(words: &[&str], lang: Lang, current: &mut Option<Room>) -> Clause {
        let mut room = *current;
        let mut mentions = Vec::new();
        let mut i = 0;
        while i < words.len() {
            if let Some((found, len)) = room_phrase(&words[i..]) {
                if i == 0 {
                    *current = Some(found);
                }
                room = Some(found);
                i += len;
                continue;
            }
            if let Some((item, len)) = item_at(&words[i..], lang) {
                mentions.push(Mention {
                    item,
                    quantity: quantity_before(&words[..i], lang),
                });
                i += len;
                continue;
            }
            i += 1;
        }
        Clause {
            verb: verb(words),
            room,
            mentions,
        }
    }

    fn directives(&self, inherits_exclusion: bool, locale: &str, out: &mut Vec<Directive>) {
        let room = self.room.map(|room| room.label(locale).to_string());
        for mention in &self.mentions {
            let action = match self.verb {
                Verb::Exclude => DirectiveAction::Exclude,
                Verb::None if inherits_exclusion => DirectiveAction::Exclude,
                Verb::Negated => continue,
                verb => match mention.quantity {
                    Some(n)
                        if n >= 2
                            || mention.item.category == Category::Box
                            || verb == Verb::Add =>
                    {
                        DirectiveAction::Add
                    }
                    _ => continue,
                },
            };
            out.push(Directive {
                action,
                key: mention.item.key.to_string(),
                label: mention.item.label(locale).to_string(),
                quantity: mention.quantity,
                room: room.clone(),
                estimated_volume_m3: None,
                note: None,
            });
        }
    }
}

/// Splits at "et", "and", "puis", "then", "mais", "but", except inside a number ("vingt et un").
fn split_conjunctions<'a>(words: &'a [&'a str], lang: Lang) -> Vec<&'a [&'a str]> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, word) in words.iter().enumerate() {
        let conjunction = matches!(*word, "et" | "and" | "puis" | "then" | "mais" | "but");
        let in_number = *word == "et"
            && i > 0
            && number_word(words[i - 1], lang).is_some()
            && words
                .get(i + 1)
                .is_some_and(|next| number_word(next, lang).is_some());
        if conjunction && !in_number {
            parts.push(&words[start..i]);
            start = i + 1;
        }
    }
    parts.push(&words[start..]);
    parts.retain(|part| !part.is_empty());
    parts
}

/// Words that introduce a room, and the articles that may follow them.
const ROOM_TRIGGERS: &[&[&str]] = &[
    &["dans"],
    &["voici"],
    &["voila"],
    &["ici"],
    &["c", "est"],
    &["on", "passe"],
    &["on", "entre"],
    &["on", "arrive"],
    &["passons"],
    &["direction"],
    &["in"],
    &["into"],
    &["this", "is"],
    &["here", "is"],
    &["here", "s"],
    &["now"],
    &["next"],
];
const ROOM_ARTICLES: &[&str] = &[
    "a", "au", "aux", "dans", "le", "la", "l", "les", "the", "my", "our", "mon", "ma", "notre",
    "en",
];

/// "dans la cuisine" → the kitchen and the words it took.
fn room_phrase(words: &[&str]) -> Option<(Room, usize)> {
    let trigger = ROOM_TRIGGERS
        .iter()
        .find(|t| words.len() > t.len() && words[..t.len()] == ***t)?;
    let mut at = trigger.len();
    while at < words.len() && ROOM_ARTICLES.contains(&words[at]) {
        at += 1;
    }
    let (room, len) = Room::at_start(&words[at..])?;
    Some((room, at + len))
}

/// Words an item name never starts with: articles stay outside the name so the quantity before
/// it is read ("un frigo" is one fridge).
fn starts_name(word: &str, lang: Lang) -> bool {
    const STOP: &[&str] = &[
        "le", "la", "les", "l", "un", "une", "des", "du", "de", "d", "mon", "ma", "mes", "ton",
        "ta", "tes", "son", "sa", "ses", "notre", "nos", "ce", "cet", "cette", "ces", "the", "a",
        "an", "my", "our", "some", "this", "that", "these", "those", "of", "y",
    ];
    // A number may start a name ("2-seat sofa"), but only the whole name matches; "quinze
    // cartons" is no name and the number is read as a quantity.
    let article = matches!(number_word(word, lang), Some(NumberWord::Add(1)));
    !STOP.contains(&word) && !article
}

/// The longest catalogue name starting at `words[0]`.
fn item_at(words: &[&str], lang: Lang) -> Option<(&'static CatalogueItem, usize)> {
    if !words.first().is_some_and(|w| starts_name(w, lang)) {
        return None;
    }
    let number = number_word(words[0], lang).is_some() || words[0].parse::<u32>().is_ok();
    let shortest = if number { 2 } else { 1 };
    (shortest..=words.len().min(MAX_NAME_WORDS))
        .rev()
        .find_map(|len| lookup(&words[..len].join(" ")).map(|item| (item, len)))
}

/// [`catalogue::lookup`] for the many spans of a transcript: the catalogue's names normalised
/// once, first item first (as the catalogue resolves them).
fn lookup(name: &str) -> Option<&'static CatalogueItem> {
    static NAMES: OnceLock<HashMap<String, &'static CatalogueItem>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        let mut names = HashMap::new();
        for item in catalogue::items() {
            let spoken = [item.key, item.label_fr, item.label_en];
            for name in spoken.iter().chain(item.aliases) {
                names.entry(catalogue::normalise(name)).or_insert(item);
            }
        }
        names
    });
    names.get(&catalogue::normalise(name)).copied()
}

/// The number said just before an item: "quinze", "15", "vingt et un", "une dizaine de",
/// "a dozen", "deux cents". Articles other than "un/une/a/an" give none.
fn quantity_before(words: &[&str], lang: Lang) -> Option<u32> {
    let mut end = words.len();
    // "une dizaine de cartons", "plein de", "a lot of" keep the number before "de"/"of".
    if end > 0 && matches!(words[end - 1], "de" | "d" | "of") {
        end -= 1;
    }
    let mut start = end;
    while start > 0 {
        let word = words[start - 1];
        let joins = word == "et"
            && start >= 2
            && number_word(words[start - 2], lang).is_some()
            && start < end;
        // "a"/"an" is one only right before the item or a multiplier: "il y a quinze" is 15.
        let article = matches!(word, "a" | "an")
            && start < end
            && !matches!(number_word(words[start], lang), Some(NumberWord::Times(_)));
        if (number_word(word, lang).is_some() && !article) || joins {
            start -= 1;
        } else {
            break;
        }
    }
    if start == end {
        return words[..end]
            .last()
            .and_then(|w| w.parse::<u32>().ok())
            .filter(|n| *n > 0)
            .map(|n| n.min(MAX_SPOKEN));
    }
    spoken_number(&words[start..end], lang)
}

#[derive(Clone, Copy)]
enum NumberWord {
    /// Adds: "trois", "vingt", "twenty".
    Add(u32),
    /// Multiplies what precedes (or one): "cent", "hundred", "dizaine", "dozen".
    Times(u32),
}

fn number_word(word: &str, lang: Lang) -> Option<NumberWord> {
    use NumberWord::{Add, Times};
    let Lang(english) = lang;
    let value = if english {
        match word {
            "a" | "an" | "one" => Add(1),
            "two" => Add(2),
            "three" => Add(3),
            "four" => Add(4),
            "five" => Add(5),
            "six" => Add(6),
            "seven" => Add(7),
            "eight" => Add(8),
            "nine" => Add(9),
            "ten" => Add(10),
            "eleven" => Add(11),
            "twelve" => Add(12),
            "thirteen" => Add(13),
            "fourteen" => Add(14),
            "fifteen" => Add(15),
            "sixteen" => Add(16),
            "seventeen" => Add(17),
            "eighteen" => Add(18),
            "nineteen" => Add(19),
            "twenty" => Add(20),
            "thirty" => Add(30),
            "forty" => Add(40),
            "fifty" => Add(50),
            "sixty" => Add(60),
            "seventy" => Add(70),
            "eighty" => Add(80),
            "ninety" => Add(90),
            "hundred" | "hundreds" => Times(100),
            "dozen" | "dozens" => Times(12),
            _ => return None,
        }
    } else {
        match word {
            "un" | "une" => Add(1),
            "deux" => Add(2),
            "trois" => Add(3),
            "quatre" => Add(4),
            "cinq" => Add(5),
            "six" => Add(6),
            "sept" => Add(7),
            "huit" => Add(8),
            "neuf" => Add(9),
            "dix" => Add(10),
            "onze" => Add(11),
            "douze" => Add(12),
            "treize" => Add(13),
            "quatorze" => Add(14),
            "quinze" => Add(15),
            "seize" => Add(16),
            "vingt" | "vingts" => Add(20),
            "trente" => Add(30),
            "quarante" => Add(40),
            "cinquante" => Add(50),
            "soixante" => Add(60),
            "cent" | "cents" | "centaine" | "centaines" => Times(100),
            "dizaine" | "dizaines" => Times(10),
            "douzaine" | "douzaines" => Times(12),
            "quinzaine" => Times(15),
            "vingtaine" => Times(20),
            "trentaine" => Times(30),
            _ => return None,
        }
    };
    Some(value)
}

/// The value of consecutive number words, French or English ("quatre vingt dix" is 90, "soixante
/// et onze" 71, "deux cents" 200, "a hundred and five" is read up to "hundred").
fn spoken_number(words: &[&str], lang: Lang) -> Option<u32> {
    let mut total: u32 = 0;
    let mut previous: Option<u32> = None;
    for word in words {
        match number_word(word, lang) {
            // "quatre vingt(s)" is eighty.
            Some(NumberWord::Add(20)) if previous == Some(4) => total = total - 4 + 80,
            Some(NumberWord::Add(n)) => total = total.saturating_add(n),
            Some(NumberWord::Times(n)) => total = total.max(1).saturating_mul(n),
            None => {}
        }
        previous = match number_word(word, lang) {
            Some(NumberWord::Add(n)) => Some(n),
            _ => None,
        };
    }
    (total > 0).then_some(total.min(MAX_SPOKEN))
}

/// What a clause asks for, from its verb phrases.
fn verb(words: &[&str]) -> Verb {
    let has = |phrases: &[&[&str]]| {
        phrases.iter().any(|phrase| {
            words.windows(phrase.len()).enumerate().any(|(at, window)| {
                // "le reste des cartons" is the rest of the boxes, not a verb.
                let noun =
                    phrase[0] == "reste" && at > 0 && matches!(words[at - 1], "le" | "du" | "au");
                window == *phrase && !noun
            })
        })
    };
    if has(NEGATED) {
        Verb::Negated
    } else if has(EXCLUDE) {
        Verb::Exclude
    } else if has(ADD) {
        Verb::Add
    } else if has(MOVES) {
        Verb::Moves
    } else {
        Verb::None
    }
}

const NEGATED: &[&[&str]] = &[
    &["reste", "pas"],
    &["restent", "pas"],
    &["restera", "pas"],
    &["resteront", "pas"],
    &["garde", "pas"],
    &["gardons", "pas"],
    &["laisse", "pas"],
    &["doesn", "t", "stay"],
    &["does", "not", "stay"],
    &["don", "t", "stay"],
    &["do", "not", "stay"],
    &["won", "t", "stay"],
    &["not", "staying"],
    &["don", "t", "keep"],
    &["do", "not", "keep"],
    &["not", "keeping"],
    &["don", "t", "leave"],
    &["do", "not", "leave"],
];

const EXCLUDE: &[&[&str]] = &[
    &["reste"],
    &["restent"],
    &["restera"],
    &["resteront"],
    &["part", "pas"],
    &["partent", "pas"],
    &["partira", "pas"],
    &["vient", "pas"],
    &["viennent", "pas"],
    &["viendra", "pas"],
    &["demenage", "pas"],
    &["demenagent", "pas"],
    &["pas", "a", "demenager"],
    &["ne", "pas", "prendre"],
    &["prenez", "pas"],
    &["prend", "pas"],
    &["emmene", "pas"],
    &["emporte", "pas"],
    &["on", "garde"],
    &["je", "garde"],
    &["nous", "gardons"],
    &["on", "le", "garde"],
    &["on", "la", "garde"],
    &["on", "les", "garde"],
    &["je", "le", "garde"],
    &["je", "la", "garde"],
    &["je", "les", "garde"],
    &["on", "laisse"],
    &["je", "laisse"],
    &["nous", "laissons"],
    &["laissez"],
    &["a", "laisser"],
    &["stays"],
    &["stay"],
    &["staying"],
    &["remains"],
    &["remain"],
    &["we", "keep"],
    &["i", "keep"],
    &["keeping"],
    &["not", "coming"],
    &["isn", "t", "coming"],
    &["aren", "t", "coming"],
    &["won", "t", "come"],
    &["not", "moving"],
    &["isn", "t", "moving"],
    &["aren", "t", "moving"],
    &["doesn", "t", "go"],
    &["does", "not", "go"],
    &["don", "t", "take"],
    &["do", "not", "take"],
    &["leave"],
    &["leaving"],
    &["left", "behind"],
];

/// Checked after the negated forms ("ne part pas" is an exclusion). "par" is how Whisper base
/// spells a "part" it half hears ("la machine à laver par").
const MOVES: &[&[&str]] = &[
    &["part"],
    &["par"],
    &["partent"],
    &["partira"],
    &["partiront"],
    &["vient"],
    &["viennent"],
    &["demenage"],
    &["demenagent"],
    &["goes"],
    &["go"],
    &["comes"],
    &["come"],
    &["coming"],
    &["moving"],
];

const ADD: &[&[&str]] = &[
    &["ajoute"],
    &["ajoutez"],
    &["ajouter"],
    &["ajoutes"],
    &["rajoute"],
    &["rajoutez"],
    &["rajouter"],
    &["en", "plus"],
    &["add"],
    &["adding"],
    &["extra"],
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Vec<(DirectiveAction, String, Option<u32>, Option<String>)> {
        directives(text, "fr")
            .directives
            .into_iter()
            .map(|d| (d.action, d.key, d.quantity, d.room))
            .collect()
    }

    fn parse_en(text: &str) -> Vec<(DirectiveAction, String, Option<u32>, Option<String>)> {
        directives(text, "en")
            .directives
            .into_iter()
            .map(|d| (d.action, d.key, d.quantity, d.room))
            .collect()
    }

    fn d(
        action: DirectiveAction,
        key: &str,
        quantity: Option<u32>,
        room: Option<&str>,
    ) -> (DirectiveAction, String, Option<u32>, Option<String>) {
        (action, key.into(), quantity, room.map(String::from))
    }

    use DirectiveAction::{Add, Exclude};

    #[test]
    fn the_fixture_narration() {
        assert_eq!(
            parse(
                "Voici le salon. Le frigo reste, il y a quinze cartons de livres dans le placard."
            ),
            vec![
                d(Exclude, "fridge", None, Some("Salon")),
                d(Add, "box_books", Some(15), Some("Salon")),
            ]
        );
        let full = directives("Alors ici le salon. Le frigo reste.", "fr");
        assert_eq!(full.directives[0].label, "Réfrigérateur");
        assert_eq!(full.directives[0].estimated_volume_m3, None);
    }

    #[test]
    fn french_exclusions() {
        assert_eq!(
            parse("la machine à laver ne part pas"),
            vec![d(Exclude, "washing_machine", None, None)]
        );
        assert_eq!(
            parse("on garde l'armoire"),
            vec![d(Exclude, "wardrobe_2_doors", None, None)]
        );
        assert_eq!(
            parse("Deux chaises restent ici."),
            vec![d(Exclude, "chair", Some(2), None)]
        );
        assert_eq!(
            parse("Le canapé, on le garde."),
            vec![d(Exclude, "sofa_3_seats", None, None)]
        );
        assert_eq!(
            parse("le frigo et le four restent"),
            vec![
                d(Exclude, "fridge", None, None),
                d(Exclude, "oven", None, None)
            ]
        );
        assert_eq!(
            parse("le lave-vaisselle reste et le congélateur aussi"),
            vec![
                d(Exclude, "dishwasher", None, None),
                d(Exclude, "freezer", None, None)
            ]
        );
        assert_eq!(
            parse("on laisse le piano"),
            vec![d(Exclude, "piano_upright", None, None)]
        );
    }

    #[test]
    fn negations_and_nouns_are_not_exclusions() {
        assert!(parse("le frigo ne reste pas, il part avec nous").is_empty());
        assert!(parse("le reste des cartons est au garage").is_empty());
        assert!(parse_en("the fridge doesn't stay").is_empty());
    }

    #[test]
    fn what_moves_never_inherits_an_exclusion() {
        assert_eq!(
            parse("Le bureau et la chaise partent, la lampe reste."),
            vec![d(Exclude, "table_lamp", None, None)]
        );
        assert_eq!(
            parse("la table de jardin et quatre chaises partent avec nous"),
            vec![d(Add, "chair", Some(4), None)]
        );
        assert_eq!(
            parse_en("the desk goes, the lamp stays"),
            vec![d(Exclude, "table_lamp", None, None)]
        );
        assert_eq!(
            parse("Le frigo reste, la machine à laver par."),
            vec![d(Exclude, "fridge", None, None)]
        );
        assert_eq!(
            parse("la chaise ne part pas"),
            vec![d(Exclude, "chair", None, None)]
        );
    }

    #[test]
    fn english_exclusions() {
        assert_eq!(
            parse_en("The fridge stays."),
            vec![d(Exclude, "fridge", None, None)]
        );
        assert_eq!(
            parse_en("we keep the washing machine"),
            vec![d(Exclude, "washing_machine", None, None)]
        );
        assert_eq!(
            parse_en("two chairs are not coming"),
            vec![d(Exclude, "chair", Some(2), None)]
        );
        assert_eq!(
            parse_en("leave the piano"),
            vec![d(Exclude, "piano_upright", None, None)]
        );
    }

    #[test]
    fn quantities_in_words_and_digits() {
        assert_eq!(
            parse("vingt et un cartons"),
            vec![d(Add, "box_standard", Some(21), None)]
        );
        assert_eq!(
            parse("quatre-vingt-dix cartons"),
            vec![d(Add, "box_standard", Some(90), None)]
        );
        assert_eq!(
            parse("soixante et onze cartons"),
            vec![d(Add, "box_standard", Some(71), None)]
        );
        assert_eq!(
            parse("deux cents cartons"),
            vec![d(Add, "box_standard", Some(200), None)]
        );
        assert_eq!(
            parse("une dizaine de cartons"),
            vec![d(Add, "box_standard", Some(10), None)]
        );
        assert_eq!(
            parse("12 cartons de livres"),
            vec![d(Add, "box_books", Some(12), None)]
        );
        assert_eq!(
            parse_en("a dozen boxes"),
            vec![d(Add, "box_standard", Some(12), None)]
        );
        assert_eq!(
            parse_en("twenty-five moving boxes"),
            vec![d(Add, "box_standard", Some(25), None)]
        );
        assert_eq!(
            parse("trois chaises et deux fauteuils"),
            vec![
                d(Add, "chair", Some(3), None),
                d(Add, "armchair", Some(2), None),
            ]
        );
    }

    #[test]
    fn one_named_piece_of_furniture_is_not_an_addition_unless_asked() {
        assert!(parse("il y a un canapé et une table basse").is_empty());
        assert!(parse("des cartons un peu partout").is_empty());
        assert_eq!(
            parse("ajoute un piano"),
            vec![d(Add, "piano_upright", Some(1), None)]
        );
        assert_eq!(
            parse_en("add a freezer"),
            vec![d(Add, "freezer", Some(1), None)]
        );
        assert_eq!(
            parse("un carton"),
            vec![d(Add, "box_standard", Some(1), None)]
        );
    }

    #[test]
    fn rooms_move_the_narration_or_place_one_clause() {
        assert_eq!(
            parse("Dans la cuisine, le frigo reste. Trois cartons dans la cave. Deux valises."),
            vec![
                d(Exclude, "fridge", None, Some("Cuisine")),
                d(Add, "box_standard", Some(3), Some("Cave")),
                d(Add, "suitcase", Some(2), Some("Cuisine")),
            ]
        );
        assert_eq!(
            parse_en("This is the bedroom. The wardrobe stays. In the kitchen three boxes."),
            vec![
                d(Exclude, "wardrobe_2_doors", None, Some("Bedroom")),
                d(Add, "box_standard", Some(3), Some("Kitchen")),
            ]
        );
        assert_eq!(
            parse("on passe à la chambre d'enfant, deux cartons")[0]
                .3
                .as_deref(),
            Some("Chambre d'enfant")
        );
        // "bureau" without a room phrase is the desk.
        assert_eq!(
            parse("le bureau reste"),
            vec![d(Exclude, "desk", None, None)]
        );
    }

    #[test]
    fn the_longest_name_wins() {
        assert_eq!(
            parse("quinze cartons de livres"),
            vec![d(Add, "box_books", Some(15), None)]
        );
        assert_eq!(
            parse("le frigo américain reste"),
            vec![d(Exclude, "fridge_american", None, None)]
        );
        assert_eq!(
            parse_en("the tv stand stays"),
            vec![d(Exclude, "tv_stand", None, None)]
        );
    }

    #[test]
    fn nothing_said_nothing_directed() {
        assert!(parse("").is_empty());
        assert!(parse("Bonjour, je filme mon appartement pour le devis.").is_empty());
        assert!(parse_en("Hello, this is my flat.").is_empty());
    }

    fn french(n: u32) -> String {
        const UNITS: [&str; 17] = [
            "", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix",
            "onze", "douze", "treize", "quatorze", "quinze", "seize",
        ];
        const TENS: [&str; 7] = [
            "",
            "dix",
            "vingt",
            "trente",
            "quarante",
            "cinquante",
            "soixante",
        ];
        fn below_100(n: u32) -> String {
            match n {
                0..=16 => UNITS[n as usize].to_string(),
                17..=19 => format!("dix-{}", UNITS[(n - 10) as usize]),
                20..=69 => {
                    let (t, u) = (n / 10, n % 10);
                    match u {
                        0 => TENS[t as usize].to_string(),
                        1 => format!("{} et un", TENS[t as usize]),
                        _ => format!("{}-{}", TENS[t as usize], UNITS[u as usize]),
                    }
                }
                70..=79 if n == 71 => "soixante et onze".to_string(),
                70..=79 => format!("soixante-{}", below_100(n - 60)),
                80 => "quatre-vingts".to_string(),
                _ => format!("quatre-vingt-{}", below_100(n - 80)),
            }
        }
        match n {
            0..=99 => below_100(n),
            100 => "cent".to_string(),
            _ => {
                let (h, rest) = (n / 100, n % 100);
                let head = if h == 1 {
                    "cent".to_string()
                } else {
                    format!("{} cent", UNITS[h as usize])
                };
                match rest {
                    0 if h > 1 => format!("{head}s"),
                    0 => head,
                    _ => format!("{head} {}", below_100(rest)),
                }
            }
        }
    }

    fn english(n: u32) -> String {
        const UNITS: [&str; 20] = [
            "",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
        ];
        const TENS: [&str; 10] = [
            "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
        ];
        match n {
            0..=19 => UNITS[n as usize].to_string(),
            _ if n.is_multiple_of(10) => TENS[(n / 10) as usize].to_string(),
            _ => format!("{}-{}", TENS[(n / 10) as usize], UNITS[(n % 10) as usize]),
        }
    }

    #[test]
    fn french_number_spelling_helper_is_right() {
        assert_eq!(french(21), "vingt et un");
        assert_eq!(french(97), "quatre-vingt-dix-sept");
        assert_eq!(french(80), "quatre-vingts");
        assert_eq!(french(300), "trois cents");
        assert_eq!(french(171), "cent soixante et onze");
    }

    proptest! {
        #[test]
        fn french_numbers_are_read(n in 1..1000u32) {
            let text = format!("il y a {} cartons de livres", french(n));
            prop_assert_eq!(parse(&text), vec![d(Add, "box_books", Some(n), None)], "{}", text);
        }

        #[test]
        fn english_numbers_are_read(n in 1..100u32) {
            let text = format!("there are {} boxes", english(n));
            prop_assert_eq!(parse_en(&text), vec![d(Add, "box_standard", Some(n), None)], "{}", text);
        }

        #[test]
        fn any_catalogue_item_can_be_added_in_a_room(index in 0..catalogue::items().len(), n in 2..60u32, digits in any::<bool>(), room in 0..Room::ALL.len()) {
            let item = &catalogue::items()[index];
            let room = Room::ALL[room];
            let number = if digits { n.to_string() } else { french(n) };
            let text = format!("Voici {}. Il y a {number} {}.", room.label("fr").to_lowercase(), item.label_fr.to_lowercase());
            prop_assert_eq!(parse(&text), vec![d(Add, item.key, Some(n), Some(room.label("fr")))], "{}", text);
            let number = if digits { n.to_string() } else { english(n) };
            let text = format!("In the {}, {number} {}.", room.label("en").to_lowercase(), item.label_en);
            prop_assert_eq!(parse_en(&text), vec![d(Add, item.key, Some(n), Some(room.label("en")))], "{}", text);
        }

        #[test]
        fn any_catalogue_item_can_be_excluded(index in 0..catalogue::items().len()) {
            let item = &catalogue::items()[index];
            let fr = format!("Le {} reste.", item.label_fr.to_lowercase());
            prop_assert_eq!(parse(&fr), vec![d(Exclude, item.key, None, None)], "{}", fr);
            let fr = format!("On garde le {}.", item.label_fr.to_lowercase());
            prop_assert_eq!(parse(&fr), vec![d(Exclude, item.key, None, None)], "{}", fr);
            let en = format!("The {} stays.", item.label_en);
            prop_assert_eq!(parse_en(&en), vec![d(Exclude, item.key, None, None)], "{}", en);
            let negated = format!("Le {} ne reste pas.", item.label_fr.to_lowercase());
            prop_assert!(parse(&negated).is_empty(), "{}", negated);
        }

        #[test]
        fn the_fast_lookup_agrees_with_the_catalogue(index in 0..catalogue::items().len(), words in "[a-z ]{0,12}") {
            let item = &catalogue::items()[index];
            for name in [item.key, item.label_fr, item.label_en].iter().chain(item.aliases) {
                prop_assert_eq!(lookup(name).map(|i| i.key), catalogue::lookup(name).map(|i| i.key));
            }
            prop_assert_eq!(lookup(&words).map(|i| i.key), catalogue::lookup(&words).map(|i| i.key));
        }

        #[test]
        fn every_directive_is_a_catalogue_item(text in "\\PC{0,120}") {
            for directive in directives(&text, "fr").directives {
                prop_assert!(catalogue::lookup(&directive.key).is_some());
                prop_assert!(directive.quantity.is_none_or(|q| (1..=MAX_SPOKEN).contains(&q)));
                prop_assert!(directive.estimated_volume_m3.is_none());
            }
        }

        #[test]
        fn sentences_are_independent_of_what_follows(index in 0..catalogue::items().len(), tail in "[a-z ]{0,30}") {
            let item = &catalogue::items()[index];
            let first = format!("Le {} reste.", item.label_fr.to_lowercase());
            let both = parse(&format!("{first} {tail}"));
            prop_assert_eq!(&both[..1], &parse(&first)[..]);
        }
    }
}
