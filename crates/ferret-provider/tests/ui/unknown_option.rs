ferret_provider::provider!(static APP = "Ui.App");

fn main() {
    ferret_provider::write_event!(APP, "Event", severity: Information, x = 1u8);
}
