"""The demo data set (`load`) and `closeout demo`."""
