print("pushgw-bench: under construction")
