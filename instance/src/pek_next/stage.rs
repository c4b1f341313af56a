//! Staging: pek-next's tables copied, as they are, into temporary tables of the import's
//! own transaction (`pn_*`), from one repeatable-read, read-only snapshot of the source.
//! The rows travel as PostgreSQL's COPY text stream, chunk by chunk from one connection
//! to the other, so the importer's memory does not grow with the data; every mapping
//! afterwards is set-based SQL inside the target database. Only people and group names
//! pass through Rust, for the folding the project's search and usernames use.

use anyhow::Context;
use futures::StreamExt;
use sqlx::{Connection, PgConnection};

use super::progress::Progress;
use crate::text::fold;

/// One staged table: the temporary table's columns and the source query that fills it
/// (same column order).
struct Staged {
    name: &'static str,
    columns: &'static str,
    select: &'static str,
}

const TABLES: &[Staged] = &[
    Staged {
        name: "users",
        columns: "id bigint PRIMARY KEY, email text, neptun text, firstname text,
                  lastname text, nickname text, screen_name text, auth_sch_id text,
                  bme_id text, dormitory text, room text, gender text, student_status text,
                  cell_phone text, status text, last_login timestamp, created_at timestamp",
        select: "SELECT id, email, neptun, firstname, lastname, nickname, screen_name,
                        auth_sch_id, bme_id, dormitory, room, gender, student_status,
                        cell_phone, status, last_login, created_at FROM users",
    },
    Staged {
        name: "im_accounts",
        columns: "id bigint, protocol text, name text, user_id bigint",
        select: "SELECT id, protocol, name, user_id FROM im_accounts",
    },
    Staged {
        name: "privacies",
        columns: "id bigint, user_id bigint, attribute_name text, visible boolean",
        select: "SELECT id, user_id, attribute_name, visible FROM privacies",
    },
    Staged {
        name: "groups",
        columns: "id bigint PRIMARY KEY, name text, parent_id bigint, grp_type text,
                  type text, state text, description text, users_can_apply boolean",
        select: "SELECT id, name, parent_id, grp_type, type, state, description,
                        users_can_apply FROM groups",
    },
    Staged {
        name: "post_types",
        columns: "id bigint PRIMARY KEY, group_id bigint, name text",
        select: "SELECT id, group_id, name FROM post_types",
    },
    Staged {
        name: "memberships",
        columns: "id bigint PRIMARY KEY, group_id bigint, user_id bigint, start_date date,
                  end_date date, archived date, status text",
        select: "SELECT id, group_id, user_id, start_date, end_date, archived, status
                   FROM memberships",
    },
    Staged {
        name: "posts",
        columns: "membership_id bigint, post_type_id bigint",
        select: "SELECT membership_id, post_type_id FROM posts",
    },
    Staged {
        name: "system_attributes",
        columns: "name text, value text",
        select: "SELECT name, value FROM system_attributes",
    },
    Staged {
        name: "evaluations",
        columns: "id bigint PRIMARY KEY, group_id bigint, semester text,
                  point_request_status text, entry_request_status text,
                  justification text, principle text, explanation text,
                  creator_user_id bigint, reviewer_user_id bigint, ts timestamp,
                  last_modification timestamp, last_evaluation timestamp,
                  next_version bigint, idx_in_semester integer",
        select: r#"SELECT id, group_id, semester, point_request_status, entry_request_status,
                          justification, principle, explanation, creator_user_id,
                          reviewer_user_id, "timestamp", last_modification, last_evaulation,
                          next_version, idx_in_semester FROM evaluations"#,
    },
    Staged {
        name: "principles",
        columns: "id bigint PRIMARY KEY, evaluation_id bigint, name text, description text,
                  type text, max_per_member integer",
        select: "SELECT id, evaluation_id, name, description, type, max_per_member
                   FROM principles",
    },
    Staged {
        name: "point_requests",
        columns: "id bigint PRIMARY KEY, evaluation_id bigint, user_id bigint, point integer",
        select: "SELECT id, evaluation_id, user_id, point FROM point_requests",
    },
    Staged {
        name: "point_details",
        columns: "id bigint PRIMARY KEY, principle_id bigint, point_request_id bigint,
                  point integer",
        select: "SELECT id, principle_id, point_request_id, point FROM point_details",
    },
    Staged {
        name: "point_detail_comments",
        columns: "id bigint PRIMARY KEY, point_detail_id bigint, user_id bigint, comment text,
                  created_at timestamp",
        select: "SELECT id, point_detail_id, user_id, comment, created_at
                   FROM point_detail_comments",
    },
    Staged {
        name: "evaluation_messages",
        columns: "id bigint PRIMARY KEY, group_id bigint, semester text, sender_user_id bigint,
                  message text, sent_at timestamp, from_system boolean",
        select: "SELECT id, group_id, semester, sender_user_id, message,
                        coalesce(sent_at, created_at), from_system FROM evaluation_messages",
    },
    Staged {
        name: "entry_requests",
        columns: "id bigint PRIMARY KEY, evaluation_id bigint, user_id bigint, entry_type text,
                  justification text, finalized boolean, recommendations jsonb",
        select: "SELECT id, evaluation_id, user_id, entry_type, justification, finalized,
                        recommendations FROM entry_requests",
    },
    Staged {
        name: "point_histories",
        columns: "user_id bigint, semester text, point integer",
        select: "SELECT user_id, semester, point FROM point_histories",
    },
];

/// The source: one connection in one `REPEATABLE READ READ ONLY` transaction, so every
/// table is read as of the same moment and nothing can be written through it.
pub struct Source {
    conn: PgConnection,
}

impl Source {
    pub async fn open(url: &str) -> anyhow::Result<Source> {
        let mut conn = PgConnection::connect(url)
            .await
            .context("connecting to the pek-next database (--source)")?;
        sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut conn)
            .await
            .context("opening the snapshot of the pek-next database")?;
        let missing: Vec<String> = sqlx::query_scalar(
            "SELECT t FROM unnest($1::text[]) t WHERE to_regclass(t) IS NULL ORDER BY t",
        )
        .bind(TABLES.iter().map(|t| t.name).collect::<Vec<_>>())
        .fetch_all(&mut conn)
        .await?;
        if !missing.is_empty() {
            anyhow::bail!(
                "--source is not a pek-next database: it has no table {}",
                missing.join(", ")
            );
        }
        Ok(Source { conn })
    }

    pub async fn close(mut self) {
        let _ = sqlx::raw_sql("ROLLBACK").execute(&mut self.conn).await;
        let _ = self.conn.close().await;
    }
}

/// Copies every source table into its `pn_` table in `target`, then the folded names.
pub async fn stage_all(
    source: &mut Source,
    target: &mut PgConnection,
    progress: &Progress,
) -> anyhow::Result<()> {
    for t in TABLES {
        let ddl = format!(
            "CREATE TEMP TABLE pn_{} ({}) ON COMMIT DROP",
            t.name, t.columns
        );
        // Fixed table definitions of this module: nothing from outside goes into them.
        sqlx::raw_sql(&ddl).execute(&mut *target).await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM ({}) s", t.select))
            .fetch_one(&mut source.conn)
            .await
            .with_context(|| format!("counting pek-next's {}", t.name))?;
        let bar = progress.phase(&format!("read {}", t.name), total as u64);
        let mut copy_in = target
            .copy_in_raw(&format!("COPY pn_{} FROM STDIN", t.name))
            .await?;
        let mut rows = 0u64;
        {
            let mut out = source
                .conn
                .copy_out_raw(&format!("COPY ({}) TO STDOUT", t.select))
                .await
                .with_context(|| format!("reading pek-next's {}", t.name))?;
            while let Some(chunk) = out.next().await {
                let chunk = chunk.with_context(|| format!("reading pek-next's {}", t.name))?;
                // Text format: one line per row (newlines inside values are escaped).
                let n = chunk.iter().filter(|b| **b == b'\n').count() as u64;
                copy_in.send(chunk).await?;
                rows += n;
                bar.inc(n);
            }
        }
        copy_in.finish().await?;
        bar.finish(rows);
        sqlx::raw_sql(&format!("ANALYZE pn_{}", t.name))
            .execute(&mut *target)
            .await?;
    }
    stage_folded(source, target, progress).await
}

/// What the project derives from names with its own folding (`text::fold`): the search
/// text of a profile, a username from a screen name, a group's folded name.
async fn stage_folded(
    source: &mut Source,
    target: &mut PgConnection,
    progress: &Progress,
) -> anyhow::Result<()> {
    sqlx::raw_sql(
        "CREATE TEMP TABLE pn_user_names (id bigint PRIMARY KEY, username text NOT NULL,
                                           search_folded text NOT NULL) ON COMMIT DROP;
         CREATE TEMP TABLE pn_group_names (id bigint PRIMARY KEY, name_folded text NOT NULL)
             ON COMMIT DROP;",
    )
    .execute(&mut *target)
    .await?;
    let bar = progress.phase("fold names", 0);
    let mut copy_in = target.copy_in_raw("COPY pn_user_names FROM STDIN").await?;
    let mut buf = String::with_capacity(1 << 16);
    {
        let mut rows = sqlx::query_as::<_, (i64, String, String, String, Option<String>)>(
            "SELECT id, coalesce(screen_name, ''), coalesce(firstname, ''),
                    coalesce(lastname, ''), nickname FROM users",
        )
        .fetch(&mut source.conn);
        while let Some(row) = rows.next().await {
            let (id, screen, first, last, nick) = row?;
            let mut names = vec![first.trim(), last.trim()];
            if let Some(n) = nick.as_deref() {
                names.push(n.trim());
            }
            let names: Vec<&str> = names.into_iter().filter(|s| !s.is_empty()).collect();
            let line = format!(
                "{id}\t{}\t{}\n",
                copy_text(&username_base(&screen, id)),
                copy_text(&fold(&names.join(" ")))
            );
            buf.push_str(&line);
            bar.inc(1);
            if buf.len() > 60_000 {
                copy_in.send(std::mem::take(&mut buf).into_bytes()).await?;
            }
        }
    }
    copy_in.send(std::mem::take(&mut buf).into_bytes()).await?;
    copy_in.finish().await?;
    let mut copy_in = target.copy_in_raw("COPY pn_group_names FROM STDIN").await?;
    {
        let mut rows =
            sqlx::query_as::<_, (i64, String)>("SELECT id, coalesce(btrim(name), '') FROM groups")
                .fetch(&mut source.conn);
        while let Some(row) = rows.next().await {
            let (id, name) = row?;
            buf.push_str(&format!("{id}\t{}\n", copy_text(&fold(&name))));
            bar.inc(1);
            if buf.len() > 60_000 {
                copy_in.send(std::mem::take(&mut buf).into_bytes()).await?;
            }
        }
    }
    copy_in.send(buf.into_bytes()).await?;
    copy_in.finish().await?;
    bar.finish(0);
    Ok(())
}

/// A username the project's rule (`^[a-z0-9][a-z0-9._-]{1,39}$`) accepts, from a
/// pek-next screen name: accents folded, lower case, anything else becomes `-`, runs of
/// `-` collapse; what is left too short becomes `user-<id>`. Names that fold alike are
/// told apart later (a `-<id>` suffix).
pub fn username_base(screen_name: &str, id: i64) -> String {
    let folded = fold(screen_name.trim());
    let mut out = String::with_capacity(folded.len());
    for c in folded.chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-') {
            c
        } else {
            '-'
        };
        if c == '-' && out.ends_with('-') {
            continue;
        }
        out.push(c);
    }
    let trimmed = out
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .trim_end_matches('-');
    let mut name: String = trimmed.chars().take(40).collect();
    while name.ends_with('-') {
        name.pop();
    }
    if name.len() < 2 {
        return format!("user-{id}");
    }
    name
}

/// A value in COPY's text format.
fn copy_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(u: &str) -> bool {
        let b = u.as_bytes();
        (2..=40).contains(&b.len())
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
    }

    #[test]
    fn screen_names_fold_into_valid_usernames() {
        assert_eq!(username_base("Ügyes Júzer 50", 50), "ugyes-juzer-50");
        assert_eq!(username_base("User.37@sch", 37), "user.37-sch");
        assert_eq!(username_base("user12", 12), "user12");
        assert_eq!(username_base("  ", 7), "user-7");
        assert_eq!(username_base("@@", 8), "user-8");
        assert_eq!(username_base("_x", 9), "user-9");
        for s in [
            "Ügyes Júzer 50",
            "a",
            "--ab--",
            "Árvíztűrő tükörfúrógép és még sok minden más is, nagyon hosszan",
            "日本語",
            ".dot",
        ] {
            let u = username_base(s, 123);
            assert!(valid(&u), "{s:?} → {u:?}");
        }
    }

    #[test]
    fn copy_text_escapes_the_separators() {
        assert_eq!(copy_text("a\tb\nc\\"), "a\\tb\\nc\\\\");
    }
}
