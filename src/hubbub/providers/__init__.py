"""Model providers: the embedded llama.cpp model and upstream APIs, behind one seam."""
