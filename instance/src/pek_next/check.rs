//! The points check: for every person and semester that pek-next computed a semester
//! figure for (`point_histories`, an integer, with the cap of the time), the figure this
//! project computes from the imported data (`evaluation::history`, the same code that
//! answers people) must be the same integer. pek-next writes the figure when a season
//! closes, so a semester it has no row at all for (the running one, or the very first)
//! is not compared, and is listed as such.

use std::collections::HashMap;

use uuid::Uuid;

use crate::db::RealmTx;
use crate::evaluation::history;

#[derive(Debug, Clone)]
pub struct Difference {
    pub pn_user_id: i64,
    pub semester: String,
    pub pek_next: i64,
    pub computed: i64,
}

#[derive(Debug, Default)]
pub struct Outcome {
    /// (person, semester) pairs compared.
    pub compared: u64,
    pub semesters: u64,
    /// Semesters with no figure in pek-next: not compared.
    pub not_computed: Vec<String>,
    pub differences: Vec<Difference>,
}

/// Computes the point history of every imported semester (as leaving the judging
/// season does), then compares.
pub async fn recompute_history(tx: &mut RealmTx) -> anyhow::Result<u64> {
    let semesters: Vec<(Uuid,)> = sqlx::query_as("SELECT id FROM map_semester ORDER BY code")
        .fetch_all(tx.conn())
        .await?;
    let mut rows = 0;
    for (id,) in semesters {
        rows += history::compute_semester(tx, id).await?;
    }
    Ok(rows)
}

pub async fn run(tx: &mut RealmTx) -> anyhow::Result<Outcome> {
    let mut out = Outcome::default();
    let semesters: Vec<(String, Uuid, String, bool)> = sqlx::query_as(
        "SELECT m.code, m.id, pg_temp.pn_sem_name(m.code),
                EXISTS (SELECT 1 FROM pn_point_histories h WHERE h.semester = m.code)
           FROM map_semester m ORDER BY m.code",
    )
    .fetch_all(tx.conn())
    .await?;
    for (code, id, name, computed) in semesters {
        if !computed {
            out.not_computed.push(name);
            continue;
        }
        out.semesters += 1;
        let pn: Vec<(i64, Option<Uuid>, i32)> = sqlx::query_as(
            "SELECT h.user_id, m.id, coalesce(h.point, 0)
               FROM pn_point_histories h LEFT JOIN map_user m ON m.pn_id = h.user_id
              WHERE h.semester = $1",
        )
        .bind(&code)
        .fetch_all(tx.conn())
        .await?;
        let ours: HashMap<Uuid, i64> = history::all_totals(tx, id)
            .await?
            .into_iter()
            .map(|t| (t.user_id, t.figure.points_integer))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for (pn_user, user, point) in pn {
            out.compared += 1;
            let computed = user.and_then(|u| ours.get(&u).copied()).unwrap_or(0);
            if let Some(u) = user {
                seen.insert(u);
            }
            if computed != i64::from(point) {
                out.differences.push(Difference {
                    pn_user_id: pn_user,
                    semester: name.clone(),
                    pek_next: i64::from(point),
                    computed,
                });
            }
        }
        // Figures here that pek-next does not have at all.
        let extra: Vec<(Uuid, i64)> = ours
            .into_iter()
            .filter(|(u, p)| *p != 0 && !seen.contains(u))
            .collect();
        for (user, computed) in extra {
            out.compared += 1;
            let pn_user: Option<(i64,)> =
                sqlx::query_as("SELECT pn_id FROM map_user WHERE id = $1")
                    .bind(user)
                    .fetch_optional(tx.conn())
                    .await?;
            out.differences.push(Difference {
                pn_user_id: pn_user.map(|p| p.0).unwrap_or(0),
                semester: name.clone(),
                pek_next: 0,
                computed,
            });
        }
    }
    Ok(out)
}
