"""Integrations with other frameworks: ``costmw.integrations.langchain``."""
