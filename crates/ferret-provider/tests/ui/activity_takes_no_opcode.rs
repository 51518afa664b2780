ferret_provider::provider!(static APP = "Ui.App");

fn main() {
    let _a = ferret_provider::start_activity!(APP, "Job", level: Information, opcode: Info);
}
