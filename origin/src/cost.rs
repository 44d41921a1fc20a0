//! Turns model usage into an estimated cost in euros, with the prices from the configuration
//! (providers bill in dollars and change prices; the operator keeps them current).

use dodolens_shared::protocol::Cost;

use crate::{analysis::Usage, config::Prices};

pub fn estimate(prices: &Prices, usage: Usage, audio_seconds: f64) -> Cost {
    let eur = usage.input_tokens as f64 * prices.input_eur_per_mtok / 1e6
        + usage.output_tokens as f64 * prices.output_eur_per_mtok / 1e6
        + audio_seconds.max(0.0) / 60.0 * prices.audio_eur_per_min;
    Cost {
        input_tokens: usage.input_tokens,
        output_tokens: usage.output_tokens,
        audio_seconds,
        eur: (eur * 1e6).round() / 1e6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_tokens_and_audio() {
        let prices = Prices {
            input_eur_per_mtok: 0.4,
            output_eur_per_mtok: 1.6,
            audio_eur_per_min: 0.003,
        };
        let cost = estimate(
            &prices,
            Usage {
                input_tokens: 1_000_000,
                output_tokens: 500_000,
            },
            120.0,
        );
        assert!((cost.eur - (0.4 + 0.8 + 0.006)).abs() < 1e-9);
        assert_eq!(cost.input_tokens, 1_000_000);
    }
}
