// `sqlx::migrate!` embeds the migrations when this crate compiles, and cargo does not know
// it read them: without this, a new migration file reaches the binary only with the next
// change to the crate's own sources (an operator built before a realm migration was added
// refused dumps holding it as "migrations this operator does not know").
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
