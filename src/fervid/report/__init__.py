"""Reports: terminal tables and the HTML page of LOSO and k-fold runs."""
