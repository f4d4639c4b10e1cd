//! Errors as a user reads them: each cause once, and the fix where one is
//! obvious.

use anyhow::{Result, bail};

/// The error and its causes, joined by `: `, with every message that an
/// earlier one already says left out. Libraries often repeat their source's
/// text in their own (`tcp connect error: tcp connect error: ...`).
pub(crate) fn describe(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || parts.iter().any(|part| part.contains(&text)) {
            continue;
        }
        match parts.last_mut() {
            // A cause that repeats its parent and adds to it replaces it.
            Some(last) if text.contains(last.as_str()) => *last = text,
            _ => parts.push(text),
        }
    }
    parts.join(": ")
}

/// Fails unless `url` is an `http://` or `https://` address with a host,
/// suggesting the likely fix.
pub(crate) fn check_url(flag: &str, url: &str) -> Result<()> {
    match url.split_once("://") {
        Some(("http" | "https", rest)) if !rest.is_empty() && !rest.starts_with('/') => {
            if url.parse::<http::Uri>().is_err() {
                bail!("{flag} {url:?} is not a valid URL");
            }
            Ok(())
        }
        Some((scheme, _)) => {
            bail!("{flag} {url:?} has the scheme {scheme:?}; the suite speaks gRPC over http:// or https://")
        }
        None if url.is_empty() => bail!("{flag} needs a URL such as http://127.0.0.1:50051"),
        None if url.contains(char::is_whitespace) => bail!("{flag} {url:?} is not a URL"),
        None => bail!("{flag} {url:?} is not a URL: did you mean http://{url}?"),
    }
}
