/**
 * The page's words, French first. Kept as plain dictionaries (no library): the page is small and
 * every string must exist in both languages, which the type checker enforces.
 */
import type { ErrorCode, WarningCode } from "./generated/protocol.js";
import { formatDuration } from "./format.js";
import type { QueueWait } from "./session-state.js";

export type Locale = "fr" | "en";
export const LOCALES: readonly Locale[] = ["fr", "en"];
export const DEFAULT_LOCALE: Locale = "fr";

const fr = {
  "app.skip": "Aller au contenu",
  "app.tagline": "Filmez votre logement pièce par pièce en parlant : l'inventaire et le volume arrivent en quelques secondes.",
  "lang.switch": "English",
  "lang.switchLabel": "Switch to English",
  "start.title": "Votre vidéo",
  "start.hint": "Nommez chaque pièce et dites ce qui ne part pas (« le frigo reste »). La vidéo n'est jamais conservée.",
  "start.pick": "Choisir une vidéo",
  "start.record": "Filmer avec la caméra",
  "record.stop": "Arrêter et envoyer",
  "record.abort": "Annuler l'enregistrement",
  "record.recording": "Enregistrement {time}",
  "record.upload": "Déjà envoyé : {sent} sur {recorded} filmés",
  "record.backlog": "{backlog} de retard",
  "record.lowered": "connexion lente : vidéo allégée à {fps} images/s",
  "record.unavailable": "Caméra ou micro indisponible : {reason}",
  "resume.notice": "Un envoi de « {name} » a été interrompu à {percent}. Choisissez à nouveau ce fichier pour reprendre là où il s'est arrêté.",
  "resume.discard": "Oublier",
  "upload.title": "Envoi",
  "upload.stats": "{percent} · {sent} sur {total}",
  "upload.speed": "{rate}",
  "upload.eta": "reste {eta}",
  "upload.resumed": "Reprise à {offset}",
  "upload.done": "Vidéo reçue",
  "stages.title": "Étapes",
  "stage.upload": "Envoi",
  "stage.extraction": "Extraction",
  "stage.transcription": "Transcription",
  "stage.analysis": "Analyse",
  "stage.result": "Résultat",
  "state.pending": "à venir",
  "state.active": "en cours",
  "state.done": "terminé",
  "state.failed": "échec",
  "connection.polling": "Connexion temps réel indisponible : mise à jour par interrogation.",
  "connection.reconnecting": "Connexion perdue, reconnexion…",
  "action.cancel": "Annuler",
  "action.retry": "Réessayer",
  "action.new": "Nouvelle vidéo",
  "cancelled": "Envoi annulé. La vidéo a été supprimée.",
  "record.cut":
    "L'enregistrement a été interrompu (page rechargée) et le navigateur n'avait pas pu garder la partie pas encore envoyée : ce qui avait été envoyé a été supprimé. Filmez à nouveau.",
  "record.finishing":
    "L'enregistrement s'est arrêté au rechargement de la page : ce qui a été filmé avant est envoyé, et l'inventaire portera sur cette partie.",
  "error.title": "L'analyse a échoué",
  "error.retryable": "Vous pouvez réessayer sans renvoyer la vidéo.",
  "error.network": "L'envoi a été interrompu : la connexion a été perdue. Choisissez à nouveau le fichier pour reprendre.",
  "error.refused": "Le serveur a refusé l'envoi (code {status}).",
  "error.rate_limited": "Trop d'envois depuis cette connexion. Réessayez dans une minute.",
  "error.gone": "Cette session a expiré et ses données ont été supprimées.",
  "result.title": "Inventaire",
  "result.total": "Volume total",
  "result.subtotal": "Sous-total",
  "result.margin": "Marge de chargement ({percent})",
  "result.items": "{count} objets",
  "result.chart": "Volume par pièce",
  "result.warnings": "À vérifier",
  "result.simulated": "Résultat simulé (aucun modèle réel n'a été appelé).",
  "result.analyser.local": "Analysé sur notre serveur par un modèle embarqué : aucune image ni aucun son n'a été envoyé à un tiers. Ce modèle ne reconnaît que des objets courants ; complétez l'inventaire.",
  "result.analyser.openai": "Analysé par un modèle d'IA externe (OpenAI).",
  "result.notes": "Remarques",
  "col.item": "Objet",
  "col.qty": "Qté",
  "col.unit": "m³ unité",
  "col.volume": "m³",
  "col.source": "Source",
  "source.seen": "vu",
  "source.said": "dit",
  "source.seenLong": "vu sur la vidéo",
  "source.saidLong": "ajouté à la voix",
  "result.weight": "Poids estimé",
  "result.flagged": "À prévoir pour le déménageur",
  "col.weight": "kg",
  "col.flags": "Particularités",
  "col.actions": "Modifier",
  "source.added": "ajouté",
  "source.corrected": "corrigé",
  "source.addedLong": "ajouté par vous",
  "source.correctedLong": "quantité corrigée par vous",
  "flag.fragile": "fragile",
  "flag.disassembly": "à démonter",
  "flag.heavy": "lourd (2 déménageurs ou matériel)",
  "review.hint": "Vérifiez l'inventaire : corrigez les quantités, retirez, ajoutez ou déplacez des objets, renommez les pièces. Les totaux se mettent à jour aussitôt.",
  "review.undo": "Annuler la dernière modification",
  "review.rename": "Renommer",
  "review.renameLabel": "Renommer la pièce {room}",
  "review.quantityLabel": "Quantité de {item}",
  "review.moveLabel": "Pièce de {item}",
  "review.removeLabel": "Retirer {item}",
  "review.refused": "Modification impossible : une pièce porte déjà ce nom.",
  "review.totals": "Total {total}, {weight}, {count} objets",
  "add.title": "Ajouter un objet",
  "add.room": "Pièce",
  "add.quantity": "Quantité",
  "add.search": "Rechercher dans le catalogue",
  "add.count": "{count} résultat(s)",
  "add.add": "Ajouter {item}",
  "add.free": "Objet hors catalogue",
  "add.freeLabel": "Nom de l'objet",
  "add.freeVolume": "Volume d'un objet (m³)",
  "add.freeWeight": "Poids d'un objet (kg, facultatif)",
  "add.freeAdd": "Ajouter cet objet",
  "confirm.title": "Confirmer et envoyer au déménageur",
  "confirm.hint": "Le déménageur reçoit cet inventaire et vous rappelle. Rien d'autre n'est demandé.",
  "confirm.submit": "Confirmer l'inventaire",
  "confirm.sending": "Envoi…",
  "confirm.done": "Inventaire confirmé et envoyé au déménageur : {total}, {weight}.",
  "confirm.cleared": "Inventaire modifié : la confirmation est retirée. Confirmez à nouveau pour l'envoyer.",
  "confirm.failed": "L'envoi a échoué, réessayez dans un instant.",
  "contact.name": "Nom",
  "contact.email": "E-mail",
  "contact.phone": "Téléphone",
  "contact.moveDate": "Date du déménagement",
  "contact.from": "Code postal de départ",
  "contact.to": "Code postal d'arrivée",
  "contact.error.name": "Indiquez votre nom.",
  "contact.error.email": "Cette adresse e-mail n'est pas valide.",
  "contact.error.phone": "Ce numéro n'est pas valide (8 à 15 chiffres).",
  "contact.error.reach": "Indiquez un e-mail ou un téléphone.",
  "contact.error.move_date": "Choisissez une date à venir.",
  "contact.error.from_postcode": "Code postal non valide.",
  "contact.error.to_postcode": "Code postal non valide.",
  "sheet.title": "Fiche de cubage",
  "sheet.total": "Volume total (marge incluse)",
  "sheet.weight": "Poids estimé",
  "sheet.items": "Objets",
  "sheet.status": "Statut",
  "sheet.confirmed": "confirmé par le client",
  "sheet.draft": "non confirmé",
  "sheet.route": "Trajet",
  "sheet.reach": "Contact",
  "sheet.margin": "Marge de chargement :",
  "sheet.csv": "Télécharger le CSV",
  "sheet.print": "Imprimer la fiche de cubage",
  "live.stage": "Étape : {stage}",
  "live.completed": "Analyse terminée : {total} au total.",
  "live.failed": "Échec de l'analyse.",
  "queue.waiting": "En file d'attente depuis {time}…",
  "queue.position": "En file d'attente depuis {time} (position {position})…",
  "queue.hint": "Le service d'analyse est très demandé : votre vidéo passera dès qu'une place se libère.",
} as const;

export type MessageKey = keyof typeof fr;
type Dictionary = Record<MessageKey, string>;

const en: Dictionary = {
  "app.skip": "Skip to content",
  "app.tagline": "Film your home room by room while talking: the inventory and its volume arrive within seconds.",
  "lang.switch": "Français",
  "lang.switchLabel": "Passer en français",
  "start.title": "Your video",
  "start.hint": "Name each room and say what stays behind (\"the fridge stays\"). The video is never kept.",
  "start.pick": "Choose a video",
  "start.record": "Record with the camera",
  "record.stop": "Stop and send",
  "record.abort": "Discard the recording",
  "record.recording": "Recording {time}",
  "record.upload": "Already sent: {sent} of {recorded} filmed",
  "record.backlog": "{backlog} behind",
  "record.lowered": "slow connection: video lightened to {fps} frames/s",
  "record.unavailable": "Camera or microphone unavailable: {reason}",
  "resume.notice": "An upload of \"{name}\" stopped at {percent}. Choose the same file again to resume where it stopped.",
  "resume.discard": "Forget it",
  "upload.title": "Upload",
  "upload.stats": "{percent} · {sent} of {total}",
  "upload.speed": "{rate}",
  "upload.eta": "{eta} left",
  "upload.resumed": "Resumed at {offset}",
  "upload.done": "Video received",
  "stages.title": "Steps",
  "stage.upload": "Upload",
  "stage.extraction": "Extraction",
  "stage.transcription": "Transcription",
  "stage.analysis": "Analysis",
  "stage.result": "Result",
  "state.pending": "pending",
  "state.active": "in progress",
  "state.done": "done",
  "state.failed": "failed",
  "connection.polling": "Live connection unavailable: updating by polling.",
  "connection.reconnecting": "Connection lost, reconnecting…",
  "action.cancel": "Cancel",
  "action.retry": "Retry",
  "action.new": "New video",
  "cancelled": "Upload cancelled. The video was deleted.",
  "record.cut":
    "The recording was interrupted (the page reloaded) and the browser could not keep the part not sent yet: what had been sent was deleted. Please film again.",
  "record.finishing":
    "The recording stopped when the page reloaded: what was filmed before is being sent, and the inventory will cover that part.",
  "error.title": "The analysis failed",
  "error.retryable": "You can retry without sending the video again.",
  "error.network": "The upload stopped: the connection was lost. Choose the file again to resume.",
  "error.refused": "The server refused the upload (code {status}).",
  "error.rate_limited": "Too many uploads from this connection. Try again in a minute.",
  "error.gone": "This session expired and its data was deleted.",
  "result.title": "Inventory",
  "result.total": "Total volume",
  "result.subtotal": "Subtotal",
  "result.margin": "Loading margin ({percent})",
  "result.items": "{count} items",
  "result.chart": "Volume per room",
  "result.warnings": "To check",
  "result.simulated": "Simulated result (no real model was called).",
  "result.analyser.local": "Analysed on our server by an embedded model: no image or sound was sent to a third party. This model only recognises common objects; complete the inventory.",
  "result.analyser.openai": "Analysed by an external AI model (OpenAI).",
  "result.notes": "Notes",
  "col.item": "Item",
  "col.qty": "Qty",
  "col.unit": "Unit m³",
  "col.volume": "m³",
  "col.source": "Source",
  "source.seen": "seen",
  "source.said": "said",
  "source.seenLong": "seen on the video",
  "source.saidLong": "added by voice",
  "result.weight": "Estimated weight",
  "result.flagged": "For the mover to plan",
  "col.weight": "kg",
  "col.flags": "Handling",
  "col.actions": "Edit",
  "source.added": "added",
  "source.corrected": "corrected",
  "source.addedLong": "added by you",
  "source.correctedLong": "quantity corrected by you",
  "flag.fragile": "fragile",
  "flag.disassembly": "to take apart",
  "flag.heavy": "heavy (2 movers or equipment)",
  "review.hint": "Check the inventory: correct quantities, remove, add or move items, rename rooms. Totals update at once.",
  "review.undo": "Undo the last change",
  "review.rename": "Rename",
  "review.renameLabel": "Rename the room {room}",
  "review.quantityLabel": "Quantity of {item}",
  "review.moveLabel": "Room of {item}",
  "review.removeLabel": "Remove {item}",
  "review.refused": "Not possible: a room already has that name.",
  "review.totals": "Total {total}, {weight}, {count} items",
  "add.title": "Add an item",
  "add.room": "Room",
  "add.quantity": "Quantity",
  "add.search": "Search the catalogue",
  "add.count": "{count} result(s)",
  "add.add": "Add {item}",
  "add.free": "Item not in the catalogue",
  "add.freeLabel": "Item name",
  "add.freeVolume": "Volume of one (m³)",
  "add.freeWeight": "Weight of one (kg, optional)",
  "add.freeAdd": "Add this item",
  "confirm.title": "Confirm and send to the mover",
  "confirm.hint": "The mover receives this inventory and calls you back. Nothing else is asked.",
  "confirm.submit": "Confirm the inventory",
  "confirm.sending": "Sending…",
  "confirm.done": "Inventory confirmed and sent to the mover: {total}, {weight}.",
  "confirm.cleared": "Inventory changed: the confirmation was withdrawn. Confirm again to send it.",
  "confirm.failed": "Sending failed, try again in a moment.",
  "contact.name": "Name",
  "contact.email": "Email",
  "contact.phone": "Phone",
  "contact.moveDate": "Moving date",
  "contact.from": "Departure postcode",
  "contact.to": "Arrival postcode",
  "contact.error.name": "Enter your name.",
  "contact.error.email": "This email address is not valid.",
  "contact.error.phone": "This number is not valid (8 to 15 digits).",
  "contact.error.reach": "Enter an email or a phone number.",
  "contact.error.move_date": "Pick a date from today on.",
  "contact.error.from_postcode": "Invalid postcode.",
  "contact.error.to_postcode": "Invalid postcode.",
  "sheet.title": "Cube sheet",
  "sheet.total": "Total volume (margin included)",
  "sheet.weight": "Estimated weight",
  "sheet.items": "Items",
  "sheet.status": "Status",
  "sheet.confirmed": "confirmed by the customer",
  "sheet.draft": "not confirmed",
  "sheet.route": "Route",
  "sheet.reach": "Contact",
  "sheet.margin": "Loading margin:",
  "sheet.csv": "Download the CSV",
  "sheet.print": "Print the cube sheet",
  "live.stage": "Step: {stage}",
  "live.completed": "Analysis done: {total} in total.",
  "live.failed": "The analysis failed.",
  "queue.waiting": "Queued for {time}…",
  "queue.position": "Queued for {time} (position {position})…",
  "queue.hint": "The analysis service is busy: your video goes through as soon as a place is free.",
};

const dictionaries: Record<Locale, Dictionary> = { fr, en };

/** Looks a message up and fills `{name}` placeholders. */
export function t(locale: Locale, key: MessageKey, params: Record<string, string | number> = {}): string {
  return dictionaries[locale][key].replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in params ? String(params[name]) : whole,
  );
}

/** The saved choice if valid, otherwise French: the product speaks French first. */
export function pickLocale(saved: string | null | undefined): Locale {
  return LOCALES.includes(saved as Locale) ? (saved as Locale) : DEFAULT_LOCALE;
}

const errorTexts: Record<Locale, Record<ErrorCode, string>> = {
  fr: {
    unsupported_media: "Ce fichier n'est pas une vidéo lisible.",
    invalid_media: "La vidéo est endommagée ou incomplète.",
    too_large: "La vidéo est trop lourde.",
    timeout: "L'analyse a pris trop de temps.",
    model_unavailable: "Le service d'analyse est momentanément indisponible.",
    model_invalid_response: "Le service d'analyse a répondu de façon inattendue.",
    origin_unavailable: "Le serveur d'analyse est injoignable.",
    origin_busy: "Le service d'analyse est resté saturé trop longtemps.",
    expired: "L'envoi est resté inactif trop longtemps.",
    cancelled: "L'envoi a été annulé.",
    internal: "Erreur interne.",
  },
  en: {
    unsupported_media: "This file is not a readable video.",
    invalid_media: "The video is damaged or incomplete.",
    too_large: "The video is too large.",
    timeout: "The analysis took too long.",
    model_unavailable: "The analysis service is temporarily unavailable.",
    model_invalid_response: "The analysis service answered unexpectedly.",
    origin_unavailable: "The analysis server cannot be reached.",
    origin_busy: "The analysis service stayed busy for too long.",
    expired: "The upload sat idle for too long.",
    cancelled: "The upload was cancelled.",
    internal: "Internal error.",
  },
};

/** "En file d'attente depuis 40 s…" / "Queued for 40 s…", with the position when known. */
export function queueText(locale: Locale, wait: QueueWait): string {
  const time = formatDuration(wait.seconds);
  return wait.position === null
    ? t(locale, "queue.waiting", { time })
    : t(locale, "queue.position", { time, position: wait.position });
}

export function errorText(locale: Locale, code: ErrorCode): string {
  return errorTexts[locale][code];
}

/** Why an upload stopped, from the edge's tus status code (0: no answer at all). */
export function uploadErrorText(locale: Locale, status: number): string {
  switch (status) {
    case 0:
      return t(locale, "error.network");
    case 413:
      return errorTexts[locale].too_large;
    case 415:
      return errorTexts[locale].unsupported_media;
    case 404:
    case 410:
      return errorTexts[locale].expired;
    case 429:
      return t(locale, "error.rate_limited");
    default:
      return t(locale, "error.refused", { status });
  }
}

const warningTexts: Record<Locale, Partial<Record<WarningCode, string>>> = {
  fr: {
    too_short: "Vidéo très courte : des pièces ont pu être oubliées.",
    too_dark: "Vidéo sombre : certains objets ont pu échapper à l'analyse.",
    blurry: "Vidéo floue : filmez plus lentement.",
    no_audio: "Pas de son : les consignes dites à voix haute n'ont pas été prises en compte.",
    no_narration: "Aucune parole détectée : rien n'a été ajouté ou retiré à la voix.",
    few_frames: "Peu d'images exploitables.",
    unknown_item: "Objet hors catalogue : volume estimé.",
    clamped: "Quantité ou volume inhabituel, ramené à une valeur plausible.",
    sink_failed: "L'envoi du résultat vers un service externe a échoué.",
    simulated: "Résultat simulé.",
  },
  en: {
    too_short: "Very short video: some rooms may be missing.",
    too_dark: "Dark video: some items may have been missed.",
    blurry: "Blurry video: film more slowly.",
    no_audio: "No sound: spoken instructions were not taken into account.",
    no_narration: "No speech detected: nothing was added or removed by voice.",
    few_frames: "Few usable frames.",
    unknown_item: "Item not in the catalogue: volume estimated.",
    clamped: "Unusual quantity or volume, brought back to a plausible value.",
    sink_failed: "Sending the result to an external service failed.",
    simulated: "Simulated result.",
  },
};

/** The localised text of a warning; the server's own message when the code is unusual. */
export function warningText(locale: Locale, code: WarningCode, serverMessage: string): string {
  const known = warningTexts[locale][code];
  // Unknown items carry the item's name in the server message, which is the useful part.
  if (code === "unknown_item" && serverMessage) return `${known} (${serverMessage})`;
  return known ?? serverMessage;
}
