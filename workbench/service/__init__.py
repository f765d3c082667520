"""The running workbench: one ``serve_turn`` call per chat turn for every face, model and
route resolution, the adapter swap gate, the turn recorder and the adapter lifecycle."""
