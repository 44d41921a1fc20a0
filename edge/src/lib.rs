//! DodoLens edge Worker.

use worker::*;

#[event(fetch)]
async fn fetch(req: Request, _env: Env, _ctx: Context) -> Result<Response> {
    match req.path().as_str() {
        "/api/dodo-lens/health" => Response::from_json(&serde_json::json!({"ok": true, "service": "dodolens-edge"})),
        _ => Response::error("not found", 404),
    }
}
