from ngcws.main import main

main()
