ferret_provider::provider!(static APP = "Ui.App");

fn main() {
    let maybe: Option<u32> = Some(3);
    ferret_provider::write_event!(APP, "Maybe", level: Information, value = maybe);
}
