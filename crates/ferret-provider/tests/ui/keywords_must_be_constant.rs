ferret_provider::provider!(static APP = "Ui.App");

fn main() {
    let mask = 0x4u64;
    ferret_provider::write_event!(APP, "Event", level: Information, keywords: mask, x = 1u8);
}
