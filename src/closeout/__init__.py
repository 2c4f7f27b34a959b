"""closeout: closing (结案) of ERP business documents."""
