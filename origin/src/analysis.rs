//! The model calls: vision over all frames, transcription of the narration, and voice
//! directives from the transcript — each with a strict JSON schema so the answer parses straight
//! into the protocol types, and volumes never come from the model.
//!
//! Any OpenAI-compatible server works through `OPENAI_BASE_URL`. The client retries 429, 5xx and
//! connection errors itself, honouring Retry-After; timeouts are retried here. `store: false`
//! keeps the frames and the transcript out of the provider's stored completions. The frames'
//! base64 copies live only inside the request, which the HTTP client drops after sending.

use async_openai::{
    config::OpenAIConfig,
    error::OpenAIError,
    types::{
        audio::{AudioInput, AudioResponseFormat, CreateTranscriptionRequestArgs},
        chat::{
            ChatCompletionRequestMessageContentPartImage,
            ChatCompletionRequestMessageContentPartText, ChatCompletionRequestSystemMessageArgs,
            ChatCompletionRequestUserMessageArgs, ChatCompletionRequestUserMessageContentPart,
            CreateChatCompletionRequestArgs, CreateChatCompletionResponse, ImageDetail, ImageUrl,
            ResponseFormat, ResponseFormatJsonSchema,
        },
        InputSource,
    },
    Client,
};
use base64::Engine;
use dodolens_shared::{
    catalogue,
    protocol::{VisionResult, VoiceDirectives},
};
use serde::{de::DeserializeOwned, Deserialize};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::{
    config::{self, ModelConfig},
    error::JobError,
    extract::Frame,
};

/// Prefix of completion ids answered by the OpenAI simulator (`tools/openai-sim`), so results
/// say they are simulated.
pub const SIMULATED_ID_PREFIX: &str = "dodolens-sim-";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl std::ops::Add for Usage {
    type Output = Usage;
    fn add(self, o: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + o.input_tokens,
            output_tokens: self.output_tokens + o.output_tokens,
        }
    }
}

pub struct Answer<T> {
    pub value: T,
    pub usage: Usage,
    pub simulated: bool,
}

/// Audio to transcribe, in a container the provider recognises by the file name.
pub struct AudioClip {
    pub bytes: Zeroizing<Vec<u8>>,
    pub format: AudioFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioFormat {
    /// Opus in Ogg: the whole-file path's encoded track.
    Ogg,
    /// PCM in WAV: a live recording's segments, cut from the raw samples.
    Wav,
}

impl AudioFormat {
    fn filename(self) -> &'static str {
        match self {
            AudioFormat::Ogg => "narration.ogg",
            AudioFormat::Wav => "narration.wav",
        }
    }
}

#[derive(Clone)]
pub struct Analyst {
    client: Client<OpenAIConfig>,
    cfg: ModelConfig,
}

#[derive(Deserialize)]
struct TranscriptionReply {
    text: String,
}

impl Analyst {
    pub fn new(cfg: &ModelConfig) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder().timeout(cfg.timeout).build()?;
        let openai = OpenAIConfig::new()
            .with_api_key(&cfg.api_key)
            .with_api_base(&cfg.base_url);
        Ok(Analyst {
            client: Client::build(http, openai),
            cfg: cfg.clone(),
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.cfg
    }

    /// One request with every frame, in time order, numbered as the model must cite them.
    pub async fn vision(
        &self,
        frames: &[Frame],
        locale: &str,
    ) -> Result<Answer<VisionResult>, JobError> {
        let detail = match self.cfg.detail {
            config::ImageDetail::Auto => ImageDetail::Auto,
            config::ImageDetail::Low => ImageDetail::Low,
            config::ImageDetail::High => ImageDetail::High,
        };
        let mut parts = vec![text_part(format!(
            "{} images extraites d'une vidéo de déménagement, dans l'ordre chronologique, \
             numérotées de 0 à {}. Langue des noms de pièces : {locale}.",
            frames.len(),
            frames.len().saturating_sub(1)
        ))];
        for (i, frame) in frames.iter().enumerate() {
            parts.push(text_part(format!("Image {i} (t = {:.1} s)", frame.pts_s)));
            let mut url = String::with_capacity(23 + frame.jpeg.len() * 4 / 3 + 4);
            url.push_str("data:image/jpeg;base64,");
            base64::engine::general_purpose::STANDARD.encode_string(&frame.jpeg[..], &mut url);
            parts.push(ChatCompletionRequestUserMessageContentPart::ImageUrl(
                ChatCompletionRequestMessageContentPartImage {
                    image_url: ImageUrl {
                        url,
                        detail: Some(detail.clone()),
                    },
                    prompt_cache_breakpoint: None,
                },
            ));
        }
        let system = format!(
            "{VISION_PROMPT}\n\nCatalogue (key: libellé):\n{}",
            catalogue_lines()
        );
        let answer = self
            .structured(
                &self.cfg.vision_model,
                "vision_inventory",
                vision_schema(),
                system,
                parts,
            )
            .await?;
        Ok(answer)
    }

    pub async fn transcribe(
        &self,
        audio: &AudioClip,
        locale: &str,
    ) -> Result<Zeroizing<String>, JobError> {
        let bytes = bytes::Bytes::from_owner(audio.bytes.clone());
        let request = CreateTranscriptionRequestArgs::default()
            .file(AudioInput {
                source: InputSource::Bytes {
                    filename: audio.format.filename().into(),
                    bytes,
                },
            })
            .model(&self.cfg.transcription_model)
            .language(language(locale))
            .response_format(AudioResponseFormat::Json)
            .build()
            .map_err(model_error)?;
        let reply: TranscriptionReply = self
            .with_timeout_retries(|| {
                let (client, request) = (self.client.clone(), request.clone());
                async move { client.audio().transcription().create_byot(request).await }
            })
            .await?;
        Ok(Zeroizing::new(reply.text))
    }

    pub async fn directives(
        &self,
        transcript: &str,
        locale: &str,
    ) -> Result<Answer<VoiceDirectives>, JobError> {
        let system = format!(
            "{DIRECTIVES_PROMPT}\nLangue : {locale}.\n\nCatalogue (key: libellé):\n{}",
            catalogue_lines()
        );
        let parts = vec![text_part(format!("Transcription :\n{transcript}"))];
        self.structured(
            &self.cfg.directives_model,
            "voice_directives",
            directives_schema(),
            system,
            parts,
        )
        .await
    }

    async fn structured<T: DeserializeOwned>(
        &self,
        model: &str,
        name: &str,
        schema: Value,
        system: String,
        parts: Vec<ChatCompletionRequestUserMessageContentPart>,
    ) -> Result<Answer<T>, JobError> {
        let request = CreateChatCompletionRequestArgs::default()
            .model(model)
            .store(false)
            .temperature(0.0)
            .messages(vec![
                ChatCompletionRequestSystemMessageArgs::default()
                    .content(system)
                    .build()
                    .map_err(model_error)?
                    .into(),
                ChatCompletionRequestUserMessageArgs::default()
                    .content(parts)
                    .build()
                    .map_err(model_error)?
                    .into(),
            ])
            .response_format(ResponseFormat::JsonSchema {
                json_schema: ResponseFormatJsonSchema {
                    name: name.to_string(),
                    description: None,
                    schema,
                    strict: Some(true),
                },
            })
            .build()
            .map_err(model_error)?;
        let response: CreateChatCompletionResponse = self
            .with_timeout_retries(|| {
                let (client, request) = (self.client.clone(), request.clone());
                async move { client.chat().create(request).await }
            })
            .await?;
        let usage = response
            .usage
            .as_ref()
            .map(|u| Usage {
                input_tokens: u.prompt_tokens as u64,
                output_tokens: u.completion_tokens as u64,
            })
            .unwrap_or_default();
        let message = response
            .choices
            .first()
            .map(|c| &c.message)
            .ok_or_else(|| JobError::ModelInvalidResponse("no choice".into()))?;
        if message.refusal.is_some() {
            return Err(JobError::ModelInvalidResponse("refusal".into()));
        }
        let content = message
            .content
            .as_deref()
            .ok_or_else(|| JobError::ModelInvalidResponse("empty content".into()))?;
        let value = serde_json::from_str(content)
            .map_err(|e| JobError::ModelInvalidResponse(format!("{name}: {e}")))?;
        Ok(Answer {
            value,
            usage,
            simulated: response.id.starts_with(SIMULATED_ID_PREFIX),
        })
    }

    async fn with_timeout_retries<T, F, Fut>(&self, call: F) -> Result<T, JobError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, OpenAIError>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(value) => return Ok(value),
                Err(OpenAIError::Reqwest(e)) if e.is_timeout() => {
                    if attempt >= self.cfg.timeout_retries {
                        return Err(JobError::Timeout("model request"));
                    }
                    attempt += 1;
                }
                Err(e) => return Err(model_error(e)),
            }
        }
    }
}

fn model_error(e: OpenAIError) -> JobError {
    match e {
        OpenAIError::JSONDeserialize(err, _) => JobError::ModelInvalidResponse(err.to_string()),
        OpenAIError::ApiError(api) => {
            JobError::ModelUnavailable(format!("HTTP {}", api.status_code))
        }
        OpenAIError::Reqwest(e) => JobError::ModelUnavailable(format!("transport: {e}")),
        OpenAIError::InvalidArgument(e) => JobError::Internal(e),
        other => JobError::ModelUnavailable(other.to_string()),
    }
}

fn text_part(text: String) -> ChatCompletionRequestUserMessageContentPart {
    ChatCompletionRequestUserMessageContentPart::Text(ChatCompletionRequestMessageContentPartText {
        text,
        prompt_cache_breakpoint: None,
    })
}

/// `fr-FR` → `fr`: the transcription API wants ISO-639-1.
fn language(locale: &str) -> String {
    let primary = locale
        .split(['-', '_'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if primary.len() == 2 {
        primary
    } else {
        "fr".to_string()
    }
}

fn catalogue_lines() -> String {
    catalogue::items()
        .iter()
        .map(|item| format!("{}: {} / {}", item.key, item.label_fr, item.label_en))
        .collect::<Vec<_>>()
        .join("\n")
}

const VISION_PROMPT: &str = "Tu es un expert en déménagement qui fait l'inventaire d'un logement \
à partir d'images extraites d'une vidéo filmée pièce par pièce. Liste chaque meuble, appareil et \
carton à déménager, regroupés par pièce (salon, cuisine, chambre…). Un même objet visible sur \
plusieurs images ne compte qu'une fois : indique toutes les images où il apparaît. Utilise la clé \
du catalogue la plus proche ; sinon la clé `other` avec un libellé et un volume estimé en m³. \
N'estime pas le volume des objets du catalogue (null). Confiance entre 0 et 1.";

const DIRECTIVES_PROMPT: &str = "Tu reçois la transcription de ce que dit la personne qui filme \
son logement pour un devis de déménagement. Extrais ses consignes : `exclude` pour un objet qui \
reste ou ne part pas (quantité null = tous), `add` pour des objets à ajouter que la caméra n'a \
peut-être pas vus (avec la quantité et la pièce si elle est dite), `note` pour une remarque sur \
une pièce (clé vide). Utilise la clé du catalogue la plus proche, sinon `other` avec un volume \
estimé. N'invente rien : sans consigne, renvoie une liste vide.";

/// Strict mode: every property required, no additional properties, nullables as type unions.
pub fn vision_schema() -> Value {
    let keys = catalogue::schema_keys();
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["rooms"],
        "properties": {
            "rooms": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name", "items"],
                    "properties": {
                        "name": { "type": "string" },
                        "items": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": false,
                                "required": ["key", "label", "quantity", "estimated_volume_m3", "confidence", "frames"],
                                "properties": {
                                    "key": { "type": "string", "enum": keys },
                                    "label": { "type": "string" },
                                    "quantity": { "type": "integer" },
                                    "estimated_volume_m3": { "type": ["number", "null"] },
                                    "confidence": { "type": "number" },
                                    "frames": { "type": "array", "items": { "type": "integer" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    })
}

pub fn directives_schema() -> Value {
    let mut keys = catalogue::schema_keys();
    keys.push("");
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["directives"],
        "properties": {
            "directives": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["action", "key", "label", "quantity", "room", "estimated_volume_m3", "note"],
                    "properties": {
                        "action": { "type": "string", "enum": ["exclude", "add", "note"] },
                        "key": { "type": "string", "enum": keys },
                        "label": { "type": "string" },
                        "quantity": { "type": ["integer", "null"] },
                        "room": { "type": ["string", "null"] },
                        "estimated_volume_m3": { "type": ["number", "null"] },
                        "note": { "type": ["string", "null"] }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_simulator_answers_with_the_prefix_recognised_here() {
        assert_eq!(openai_sim::ID_PREFIX, super::SIMULATED_ID_PREFIX);
    }
}
