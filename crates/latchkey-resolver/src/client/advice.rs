//! Messages that say what went wrong in the user's terms and what to do about it, where the
//! raw failure points elsewhere: a TLS error that is really a plain-HTTP server.

use latchkey_http::error_chain;

/// Whether a connection failed because the server answered plain HTTP to a TLS handshake:
/// rustls reads the first bytes of `HTTP/1.x 400 ...` as a record of an unknown content type.
pub(super) fn answered_plain_http(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if is_invalid_content_type(err) {
            return true;
        }
        // io::Error's `source` skips the error it wraps: look inside it.
        if let Some(inner) = err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
            && (is_invalid_content_type(inner) || answered_plain_http(inner))
        {
            return true;
        }
        next = err.source();
    }
    // Whatever the wrapping, rustls's words for it.
    error_chain(e).contains("InvalidContentType")
}

fn is_invalid_content_type(e: &(dyn std::error::Error + 'static)) -> bool {
    matches!(
        e.downcast_ref::<rustls::Error>(),
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType))
    )
}
