fn main() {
    if std::env::args().nth(1).as_deref() == Some("crd") {
        print!("{}", pek_crds::crd_yaml());
    }
}
