//! Checks a session creation must pass before any Durable Object exists: the per-client rate
//! limit (429 + `Retry-After`) and, when `TURNSTILE_SECRET` is set, a Turnstile token that
//! siteverify accepts (403; 503 when siteverify cannot be asked).
//!
//! The rate limit comes first, so a flood of creations cannot make the edge call siteverify for
//! each. The rules (client key, wait time, what siteverify's answer means) are
//! `dodolens_shared::admission`; this module does the binding call and the fetch.

use crate::{
    config::{Config, CREATE_LIMITER_BINDING},
    error::EdgeError,
    object::now,
};
use dodolens_shared::admission::{self, SiteverifyRequest, Verdict};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

/// The address Cloudflare saw the client connect from (it overwrites any client-sent value).
const CLIENT_ADDRESS: &str = "CF-Connecting-IP";
/// Where the page puts the Turnstile widget's token on the creation request.
pub const TURNSTILE_HEADER: &str = "X-Turnstile-Token";

pub async fn admit(req: &Request, env: &Env, config: &Config) -> Result<(), EdgeError> {
    let address = req.headers().get(CLIENT_ADDRESS)?;
    let key = admission::client_key(address.as_deref());
    let outcome = env.rate_limiter(CREATE_LIMITER_BINDING)?.limit(key).await?;
    if !outcome.success {
        return Err(EdgeError::TooManyRequests {
            retry_after_secs: admission::retry_after_secs(now(), config.create_limit_period_secs),
        });
    }
    if let Some(secret) = config.turnstile_secret.as_deref() {
        let token = req.headers().get(TURNSTILE_HEADER)?;
        let token = admission::check_token(token.as_deref()).map_err(refusal)?;
        let verdict = siteverify(config, secret, token, address.as_deref()).await;
        if verdict != Verdict::Passed {
            return Err(refusal(verdict));
        }
    }
    Ok(())
}

fn refusal(verdict: Verdict) -> EdgeError {
    match verdict {
        Verdict::Refused(message) => EdgeError::ChallengeFailed(message),
        Verdict::Passed | Verdict::Unavailable => EdgeError::ChallengeUnavailable,
    }
}

/// Asks siteverify about `token`; any failure to get an answer is [`Verdict::Unavailable`].
async fn siteverify(config: &Config, secret: &str, token: &str, address: Option<&str>) -> Verdict {
    let answer = async {
        let body = serde_json::to_string(&SiteverifyRequest {
            secret,
            response: token,
            remoteip: address,
        })?;
        let headers = Headers::new();
        headers.set("Content-Type", "application/json")?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(body.into()));
        let request = Request::new_with_init(&config.turnstile_verify_url, &init)?;
        let mut response = Fetch::Request(request).send().await?;
        Ok::<_, worker::Error>((response.status_code(), response.bytes().await?))
    }
    .await;
    match answer {
        Ok((status, body)) => admission::verdict(Some(status), &body),
        Err(e) => {
            worker::console_warn!("siteverify unreachable: {e}");
            admission::verdict(None, &[])
        }
    }
}
