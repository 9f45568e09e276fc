from pane.cli import main

main()
