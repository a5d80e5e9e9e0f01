from facesift.cli import main

main()
