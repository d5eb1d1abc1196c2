#[test]
fn print_demo() {
    let app = sirqtop::tui::demo::app();
    println!("{}", sirqtop::tui::render_to_text(&app, 160, 30));
}
