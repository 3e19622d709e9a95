from cnnops.cli import main

main()
