//! Whether an image file is whole, judged by its container structure.
//!
//! The contract promises dimensions "only when the whole image decoded", but
//! decoders are lenient: the JPEG decoder fills a file cut to a quarter of
//! its length with grey, and the PNG decoder stops reading once it has the
//! pixels. These checks make "whole" mean the same thing it means to libjpeg,
//! libpng and libwebp, which is what the Python peer (Pillow) reports.

use contracts::mensagem::ImageFormat;

/// True when `bytes` is structurally complete for `format`. Decoding still
/// decides whether the pixel data is sound.
pub(crate) fn is_complete(format: ImageFormat, bytes: &[u8]) -> bool {
    match format {
        ImageFormat::Png => png_is_complete(bytes),
        ImageFormat::Jpeg => jpeg_is_complete(bytes),
        ImageFormat::Webp => webp_is_complete(bytes),
        // The GIF decoder already refuses a stream without its trailer.
        ImageFormat::Gif => true,
        ImageFormat::Unknown => false,
    }
}

/// Every chunk present with a valid CRC, up to and including IEND.
fn png_is_complete(bytes: &[u8]) -> bool {
    let mut rest = match bytes.get(8..) {
        Some(rest) => rest,
        None => return false,
    };
    loop {
        let Some(header) = rest.get(..8) else { return false };
        let len = u32::from_be_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let Some(chunk) = rest.get(4..8 + len + 4) else { return false };
        let (typed_data, crc) = chunk.split_at(4 + len);
        if crc32fast::hash(typed_data).to_be_bytes() != crc {
            return false;
        }
        if &typed_data[..4] == b"IEND" {
            return true;
        }
        rest = &rest[12 + len..];
    }
}

/// An end-of-image marker after the first start-of-scan. Entropy-coded data
/// cannot contain FF D9 (an FF there is always followed by 00 or a restart
/// marker), so finding it means the last scan was not cut off.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let Some(scan) = bytes.windows(2).position(|w| w == [0xff, 0xda]) else { return false };
    bytes[scan..].windows(2).any(|w| w == [0xff, 0xd9])
}

/// The RIFF size field matches the file: a cut or padded file does not.
fn webp_is_complete(bytes: &[u8]) -> bool {
    match bytes.get(4..8) {
        Some(size) => u32::from_le_bytes(size.try_into().expect("4 bytes")) as usize + 8 == bytes.len(),
        None => false,
    }
}
