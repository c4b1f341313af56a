//! Keyset pagination: `limit` (bounded) and an opaque `cursor` naming the last row seen.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::text::Line;

/// A `cursor=` query value as a client sends it (checked text; decoded by
/// [`PageParams::cursor`] / [`decode_cursor`]).
pub type CursorText = Line<1000>;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Page size, 1–200 (default 50).
    pub limit: Option<u32>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<CursorText>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    pub key: String,
    pub id: Uuid,
}

impl PageParams {
    pub fn limit(&self) -> Result<i64> {
        match self.limit.unwrap_or(DEFAULT_LIMIT) {
            n @ 1..=MAX_LIMIT => Ok(n as i64),
            n => Err(Error::BadRequest(format!(
                "limit must be between 1 and {MAX_LIMIT}, got {n}"
            ))),
        }
    }

    pub fn cursor(&self) -> Result<Option<Cursor>> {
        self.cursor.as_deref().map(decode_cursor).transpose()
    }
}

/// Decodes a cursor. The key inside goes back into SQL, so it must be text PostgreSQL
/// accepts: a forged cursor with a NUL in it is a bad cursor, not a server error.
pub fn decode_cursor(c: &str) -> Result<Cursor> {
    let bad = || Error::BadRequest("invalid cursor".into());
    let raw = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    let (key, id): (String, Uuid) = serde_json::from_slice(&raw).map_err(|_| bad())?;
    crate::text::check(&key, 1000, false).map_err(|_| bad())?;
    Ok(Cursor { key, id })
}

pub fn encode_cursor(key: &str, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&(key, id)).unwrap_or_default())
}

#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> (String, Uuid)) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| {
                let (k, id) = key(r);
                encode_cursor(&k, id)
            })
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}
