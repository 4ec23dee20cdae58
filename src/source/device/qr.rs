//! A QR code of the verification URL on the terminal, for headless logins: the URL is opened
//! on a phone instead of being typed.

use std::io::IsTerminal;

use qrcode::render::unicode::Dense1x2;
use qrcode::{EcLevel, QrCode};

/// `LATCHKEY_QR=1` always prints the code, `0` never; unset, it is printed when stderr is a
/// terminal that can draw it (not `TERM=dumb`).
pub const ENV_QR: &str = "LATCHKEY_QR";

/// Whether to print a QR code now.
pub fn wanted() -> bool {
    let auto = || std::io::stderr().is_terminal() && std::env::var("TERM").map_or(true, |t| t != "dumb");
    match std::env::var(ENV_QR).ok().as_deref().map(str::trim) {
        None | Some("") => auto(),
        Some("1" | "true" | "yes") => true,
        Some("0" | "false" | "no") => false,
        Some(other) => {
            eprintln!("latchkey: {ENV_QR}={other:?} is not 0 or 1; ignored");
            auto()
        }
    }
}

/// `text` as a QR code drawn with half-block characters, two modules per character cell, with
/// the 4-module quiet zone the standard asks for. `None` if `text` does not fit in a QR code.
///
/// The blocks draw the light modules, as `qrencode -t UTF8` does: on the usual dark terminal
/// background that gives dark modules on light, and scanners also read the inverse.
pub fn render(text: &str) -> Option<String> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::L).ok()?;
    Some(code.render::<Dense1x2>().dark_color(Dense1x2::Light).light_color(Dense1x2::Dark).quiet_zone(true).build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read the drawing back into modules (glyph cells are light) and decode it with rqrr, an
    /// independent decoder: what a phone camera would do.
    fn decode(drawing: &str) -> String {
        let rows: Vec<Vec<char>> = drawing.lines().map(|l| l.chars().collect()).collect();
        let width = rows[0].len();
        assert!(rows.iter().all(|r| r.len() == width), "every row is as wide as the first");
        let light = |x: usize, y: usize| match rows[y / 2][x] {
            ' ' => false,
            '\u{2588}' => true,
            '\u{2580}' => y.is_multiple_of(2),
            '\u{2584}' => !y.is_multiple_of(2),
            other => panic!("unexpected character {other:?} in the drawing"),
        };
        // Scale each module to 4x4 pixels: rqrr's finder wants more than one pixel per module.
        let scale = 4;
        let (w, h) = (width * scale, rows.len() * 2 * scale);
        let mut image =
            rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| if light(x / scale, y / scale) { 255 } else { 0 });
        let grids = image.detect_grids();
        assert_eq!(grids.len(), 1, "one QR code in the drawing");
        grids[0].decode().expect("the drawing decodes").1
    }

    #[test]
    fn a_verification_url_round_trips_through_an_independent_decoder() {
        for url in [
            "https://registry.example/device",
            "https://auth.atcr.io/device?user_code=WDJB-MJHT",
            "http://127.0.0.1:40123/device?user_code=ABCD-EFGH&x=1",
        ] {
            let drawing = render(url).expect("a URL fits");
            assert_eq!(decode(&drawing), url);
        }
    }

    #[test]
    fn text_too_long_for_a_qr_code_is_none() {
        assert!(render(&"x".repeat(8000)).is_none());
    }
}
