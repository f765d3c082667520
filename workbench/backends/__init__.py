"""What generates the answers, behind one ``Backend`` interface: the in-process engine
(``local``) or any OpenAI-compatible server (``remote``)."""
