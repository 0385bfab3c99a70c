int memcg;
int line2;
int line3;
