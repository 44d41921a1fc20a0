//! The rooms of a home, as the local backend names them.
//!
//! Two rule-based parts of the local backend must agree on room names so fusion puts what the
//! camera saw and what the narration added in the same room: the counting rule (which infers a
//! room from the objects in a frame: a bed means a bedroom) and the narration parser ("dans la
//! chambre"). Both take the name from here, in the job's locale.

use crate::catalogue;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Room {
    LivingRoom,
    DiningRoom,
    Kitchen,
    Bedroom,
    ChildRoom,
    Bathroom,
    Office,
    Entrance,
    Laundry,
    Cellar,
    Attic,
    Garage,
    Garden,
}

impl Room {
    pub const ALL: [Room; 13] = [
        Room::LivingRoom,
        Room::DiningRoom,
        Room::Kitchen,
        Room::Bedroom,
        Room::ChildRoom,
        Room::Bathroom,
        Room::Office,
        Room::Entrance,
        Room::Laundry,
        Room::Cellar,
        Room::Attic,
        Room::Garage,
        Room::Garden,
    ];

    /// The display name in a BCP 47 locale: English for `en*`, French otherwise.
    pub fn label(self, locale: &str) -> &'static str {
        let (fr, en) = self.labels();
        if catalogue::is_english(locale) {
            en
        } else {
            fr
        }
    }

    fn labels(self) -> (&'static str, &'static str) {
        match self {
            Room::LivingRoom => ("Salon", "Living room"),
            Room::DiningRoom => ("Salle à manger", "Dining room"),
            Room::Kitchen => ("Cuisine", "Kitchen"),
            Room::Bedroom => ("Chambre", "Bedroom"),
            Room::ChildRoom => ("Chambre d'enfant", "Child's bedroom"),
            Room::Bathroom => ("Salle de bain", "Bathroom"),
            Room::Office => ("Bureau", "Office"),
            Room::Entrance => ("Entrée", "Hallway"),
            Room::Laundry => ("Buanderie", "Laundry room"),
            Room::Cellar => ("Cave", "Cellar"),
            Room::Attic => ("Grenier", "Attic"),
            Room::Garage => ("Garage", "Garage"),
            Room::Garden => ("Jardin", "Garden"),
        }
    }

    /// How people say it, folded (lowercase, no accents, punctuation as spaces), French and
    /// English. Longer forms first, so "chambre d enfant" wins over "chambre".
    pub(crate) fn spoken(self) -> &'static [&'static str] {
        match self {
            Room::LivingRoom => &[
                "salle de sejour",
                "sejour",
                "salon",
                "living room",
                "lounge",
            ],
            Room::DiningRoom => &["salle a manger", "dining room"],
            Room::Kitchen => &["coin cuisine", "cuisine", "kitchen"],
            Room::Bedroom => &["chambre a coucher", "chambre", "bedroom"],
            Room::ChildRoom => &[
                "chambre d enfant",
                "chambre des enfants",
                "chambre du bebe",
                "chambre de bebe",
                "kids room",
                "kid s room",
                "child s bedroom",
                "children s room",
                "nursery",
            ],
            Room::Bathroom => &[
                "salle de bains",
                "salle de bain",
                "salle d eau",
                "toilettes",
                "bathroom",
                "toilet",
            ],
            Room::Office => &["bureau", "office", "study"],
            Room::Entrance => &["entree", "couloir", "hall", "hallway", "corridor"],
            Room::Laundry => &[
                "buanderie",
                "cellier",
                "laundry room",
                "laundry",
                "utility room",
            ],
            Room::Cellar => &["cave", "sous sol", "cellar", "basement"],
            Room::Attic => &["grenier", "combles", "attic", "loft"],
            Room::Garage => &["garage", "atelier", "workshop"],
            Room::Garden => &[
                "jardin", "terrasse", "balcon", "garden", "terrace", "balcony", "patio",
            ],
        }
    }

    /// The room a sequence of folded words starts with, and how many words it took.
    pub(crate) fn at_start(words: &[&str]) -> Option<(Room, usize)> {
        let mut best: Option<(Room, usize)> = None;
        for room in Room::ALL {
            for form in room.spoken() {
                let form: Vec<&str> = form.split(' ').collect();
                let matches = words.len() >= form.len()
                    && words
                        .iter()
                        .zip(&form)
                        .all(|(word, part)| word == part || singular_of(word) == *part);
                if matches && best.is_none_or(|(_, len)| form.len() > len) {
                    best = Some((room, form.len()));
                }
            }
        }
        best
    }
}

/// "chambres" is a "chambre": a spoken plural still names the room.
fn singular_of(word: &str) -> &str {
    word.strip_suffix('s').unwrap_or(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_locale() {
        assert_eq!(Room::Kitchen.label("fr-FR"), "Cuisine");
        assert_eq!(Room::Kitchen.label("en-GB"), "Kitchen");
        assert_eq!(Room::Bathroom.label(""), "Salle de bain");
    }

    #[test]
    fn spoken_forms_are_folded_and_find_their_room() {
        for room in Room::ALL {
            for form in room.spoken() {
                assert_eq!(
                    &catalogue::fold(form).trim(),
                    form,
                    "{form:?} is not folded"
                );
                let words: Vec<&str> = form.split(' ').collect();
                assert_eq!(
                    Room::at_start(&words),
                    Some((room, words.len())),
                    "{form:?}"
                );
            }
            let label = catalogue::fold(room.label("fr"));
            let words: Vec<&str> = label.split_whitespace().collect();
            assert_eq!(Room::at_start(&words).map(|(r, _)| r), Some(room));
        }
    }

    #[test]
    fn longest_form_wins() {
        let words = ["chambre", "d", "enfant", "ici"];
        assert_eq!(Room::at_start(&words), Some((Room::ChildRoom, 3)));
        assert_eq!(
            Room::at_start(&["chambre", "ici"]),
            Some((Room::Bedroom, 1))
        );
        assert_eq!(Room::at_start(&["placard"]), None);
        assert_eq!(Room::at_start(&[]), None);
    }
}
